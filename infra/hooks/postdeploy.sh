#!/bin/sh
# azd postdeploy hook: create (or update) the Event Grid system topic on the vault and the
# subscription to the `keyvault_events` function, from infra/eventgrid.bicep. It runs after the
# code is deployed because Event Grid refuses a subscription to a function that does not exist.
# Inputs are the outputs of infra/main.bicep, which azd exports to hooks. Needs the Azure CLI,
# signed in to the same tenant (`az login`); idempotent, so `azd deploy` can run it again.
set -eu

fail() { printf 'postdeploy: %s\n' "$*" >&2; exit 1; }

for name in AZURE_ENV_NAME AZURE_LOCATION AZURE_SUBSCRIPTION_ID AZURE_FUNCTION_APP_ID AZURE_KEY_VAULT_ID \
    AZURE_KEY_VAULT_LOCATION AZURE_STORAGE_ACCOUNT_ID EVENTGRID_DEADLETTER_CONTAINER; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || fail "$name is not set: run \`azd provision\` first."
done
command -v az >/dev/null || fail "the Azure CLI (az) is needed to create the Event Grid subscription."
az account show --only-show-errors --output none 2>/dev/null || fail "the Azure CLI is not signed in: run \`az login\`."

cd "$(dirname "$0")/../.."
deployment=$(printf 'eventgrid-%s' "$AZURE_ENV_NAME" | cut -c1-64)
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

# Right after a deployment the function index may not be synced yet: Event Grid then answers that
# the destination does not exist. Retry that case only; fail fast on anything else.
attempt=1
while :; do
  if az deployment sub create --only-show-errors --output none \
      --subscription "$AZURE_SUBSCRIPTION_ID" --location "$AZURE_LOCATION" --name "$deployment" \
      --template-file infra/eventgrid.bicep \
      --parameters functionAppId="$AZURE_FUNCTION_APP_ID" keyVaultId="$AZURE_KEY_VAULT_ID" \
        keyVaultLocation="$AZURE_KEY_VAULT_LOCATION" storageAccountId="$AZURE_STORAGE_ACCOUNT_ID" \
        deadLetterContainerName="$EVENTGRID_DEADLETTER_CONTAINER" \
        tags="{\"azd-env-name\": \"$AZURE_ENV_NAME\"}" 2>"$errors"; then
    echo "postdeploy: Event Grid subscription 'acr-token-rotator' delivers Key Vault events to keyvault_events."
    exit 0
  fi
  if [ "$attempt" -ge 6 ] || ! grep -qi -e 'endpoint not found' -e 'endpoint validation' "$errors"; then
    cat "$errors" >&2
    fail "could not deploy infra/eventgrid.bicep (attempt $attempt)."
  fi
  echo "postdeploy: the function is not reachable yet; retrying in 30 s (attempt $attempt of 6)." >&2
  attempt=$((attempt + 1))
  sleep 30
done

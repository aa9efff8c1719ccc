# azd postdeploy hook for Windows (PowerShell 7): the same steps as postdeploy.sh, which runs on
# Linux, macOS and WSL. It creates (or updates) the Event Grid system topic on the vault and the
# subscription to the `keyvault_events` function from infra/eventgrid.bicep, after the code is
# deployed: Event Grid refuses a subscription to a function that does not exist yet. Inputs are the
# outputs of infra/main.bicep, which azd exports to hooks. Needs the Azure CLI, signed in to the same
# tenant (`az login`); idempotent, so `azd deploy` can run it again.
$ErrorActionPreference = 'Stop'

function Fail([string] $message) {
    [Console]::Error.WriteLine("postdeploy: $message")
    exit 1
}

foreach ($name in 'AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_SUBSCRIPTION_ID', 'AZURE_FUNCTION_APP_ID', 'AZURE_KEY_VAULT_ID',
        'AZURE_KEY_VAULT_LOCATION', 'AZURE_STORAGE_ACCOUNT_ID', 'EVENTGRID_DEADLETTER_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { Fail "$name is not set: run ``azd provision`` first." }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { Fail 'the Azure CLI (az) is needed to create the Event Grid subscription.' }
az account show --only-show-errors --output none 2>$null
if ($LASTEXITCODE -ne 0) { Fail 'the Azure CLI is not signed in: run `az login`.' }

Set-Location (Join-Path $PSScriptRoot '../..')
$deployment = "eventgrid-$($env:AZURE_ENV_NAME)"
if ($deployment.Length -gt 64) { $deployment = $deployment.Substring(0, 64) }
$tags = "{""azd-env-name"": ""$($env:AZURE_ENV_NAME)""}"

# Right after a deployment the function index may not be synced yet: Event Grid then answers that the
# destination does not exist. Retry that case only; fail fast on anything else.
for ($attempt = 1; ; $attempt++) {
    $errors = az deployment sub create --only-show-errors --output none `
        --subscription $env:AZURE_SUBSCRIPTION_ID --location $env:AZURE_LOCATION --name $deployment `
        --template-file infra/eventgrid.bicep `
        --parameters functionAppId="$($env:AZURE_FUNCTION_APP_ID)" keyVaultId="$($env:AZURE_KEY_VAULT_ID)" `
            keyVaultLocation="$($env:AZURE_KEY_VAULT_LOCATION)" storageAccountId="$($env:AZURE_STORAGE_ACCOUNT_ID)" `
            deadLetterContainerName="$($env:EVENTGRID_DEADLETTER_CONTAINER)" `
            tags=$tags 2>&1
    if ($LASTEXITCODE -eq 0) {
        Write-Output "postdeploy: Event Grid subscription 'acr-token-rotator' delivers Key Vault events to keyvault_events."
        exit 0
    }
    $text = ($errors | Out-String)
    if ($attempt -ge 6 -or -not ($text -match '(?i)endpoint not found|endpoint validation')) {
        [Console]::Error.WriteLine($text)
        Fail "could not deploy infra/eventgrid.bicep (attempt $attempt)."
    }
    [Console]::Error.WriteLine("postdeploy: the function is not reachable yet; retrying in 30 s (attempt $attempt of 6).")
    Start-Sleep -Seconds 30
}

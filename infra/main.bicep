// acr-token-rotator: everything `azd provision` creates. Subscription scope: it creates the
// resource group, and assigns roles on registries (and optionally a vault) in other groups.
// The Event Grid subscription comes later, from the postdeploy hook (infra/eventgrid.bicep):
// a subscription to a function that is not deployed yet fails.
targetScope = 'subscription'

metadata description = 'acr-token-rotator: rotates ACR repository-scoped token credentials into Key Vault.'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of the resource group and of the resources in it.')
param location string

@description('Object ID of the identity running azd. With deployerCanReadSecrets, it may read secret values of a vault this deployment creates.')
param principalId string = ''

@minLength(1)
@description('Resource IDs of the container registries whose tokens are rotated, in any resource group of this subscription: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>.')
param registryIds array

@description('Resource ID of an existing Key Vault (RBAC mode) to publish to; empty creates one.')
param existingKeyVaultId string = ''

@description('NCRONTAB schedule of the timer scan (six fields, seconds first).')
@minLength(11)
param schedule string = '0 0 */6 * * *'

@description('Lifetime of a new password, in days.')
@minValue(1)
@maxValue(3650)
param validityDays int = 90

@description('Rotate when the active password expires within this many days; must be below validityDays.')
@minValue(0)
@maxValue(3649)
param renewBeforeDays int = 30

@description('Tokens rotated at the same time by a scan.')
@minValue(1)
@maxValue(64)
param maxParallel int = 4

@description('Comma-separated fnmatch patterns of token names to manage.')
param includeTokens string = '*'

@description('Comma-separated fnmatch patterns of token names to leave alone.')
param excludeTokens string = ''

@description('Adopt tokens that have no Key Vault secret yet (README: adoption rule).')
param adoptUnmanaged bool = true

@description('Seconds a new password may take to log in before the rotation fails.')
@minValue(1)
@maxValue(600)
param verifyTimeoutSeconds int = 90

@description('Tolerated clock difference between the app, ARM and Key Vault, in seconds.')
@minValue(0)
@maxValue(3600)
param clockSkewSeconds int = 300

@description('Also publish acr-<registry>-<token>-dockerconfigjson secrets for Kubernetes.')
param dockerConfigJson bool = false

@description('Blob container of the per-token leases.')
param leaseContainerName string = 'acr-token-rotator-locks'

@description('Blob container receiving undeliverable Event Grid events.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Grant the deployer (principalId) Key Vault Secrets User on a vault this deployment creates.')
param deployerCanReadSecrets bool = true

@description('Extra tags for every resource.')
param extraTags object = {}

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = union(extraTags, {
  'azd-env-name': environmentName
})
var serviceName = 'rotator'
var deploymentContainerName = 'app-package'
var createVault = empty(existingKeyVaultId)
var existingVaultParts = split(existingKeyVaultId, '/')
var vaultSubscriptionId = createVault ? subscription().subscriptionId : existingVaultParts[2]
var vaultResourceGroupName = createVault ? resourceGroupName : existingVaultParts[4]
var vaultName = createVault ? 'kv-${resourceToken}' : last(existingVaultParts)
var vaultId = resourceId(vaultSubscriptionId, vaultResourceGroupName, 'Microsoft.KeyVault/vaults', vaultName)
var vaultUrl = 'https://${vaultName}${environment().suffixes.keyvaultDns}/'
var resourceGroupName = 'rg-${environmentName}'

// Every ROTATOR_* setting the code reads (rotator/settings.py SETTINGS), as app settings; tests/infra
// checks the names against the code. ROTATOR_ARM_ENDPOINT is the ARM endpoint of the cloud deployed
// to (the one setting tests/infra/crosscheck.py RELAXATIONS allows to differ from devstack's env).
var rotatorSettings = {
  ROTATOR_REGISTRIES: join(registryIds, ',')
  ROTATOR_VAULT_URL: vaultUrl
  ROTATOR_VALIDITY_DAYS: string(validityDays)
  ROTATOR_RENEW_BEFORE_DAYS: string(renewBeforeDays)
  ROTATOR_MAX_PARALLEL: string(maxParallel)
  ROTATOR_INCLUDE_TOKENS: includeTokens
  ROTATOR_EXCLUDE_TOKENS: excludeTokens
  ROTATOR_ADOPT_UNMANAGED: adoptUnmanaged ? 'true' : 'false'
  ROTATOR_VERIFY_TIMEOUT_SECONDS: string(verifyTimeoutSeconds)
  ROTATOR_CLOCK_SKEW_SECONDS: string(clockSkewSeconds)
  ROTATOR_DOCKERCONFIGJSON: dockerConfigJson ? 'true' : 'false'
  ROTATOR_LEASE_CONTAINER: leaseContainerName
  ROTATOR_SCHEDULE: schedule
  ROTATOR_ARM_ENDPOINT: environment().resourceManager
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
    leaseContainerName: leaseContainerName
    deadLetterContainerName: deadLetterContainerName
  }
}

module keyVault 'modules/keyvault.bicep' = if (createVault) {
  name: 'keyvault-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    name: vaultName
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-${resourceToken}'
    name: 'func-${resourceToken}'
    serviceName: serviceName
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    rotatorSettings: rotatorSettings
  }
}

module appRoles 'modules/app-roles.bicep' = {
  name: 'app-roles-${resourceToken}'
  scope: rg
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module vaultAccess 'modules/vault-access.bicep' = {
  name: 'vault-access-${resourceToken}'
  scope: resourceGroup(vaultSubscriptionId, vaultResourceGroupName)
  dependsOn: [
    keyVault
  ]
  params: {
    vaultName: vaultName
    appPrincipalId: functionApp.outputs.principalId
    readerPrincipalId: createVault && deployerCanReadSecrets ? principalId : ''
  }
}

module acrRole 'modules/acr-role.bicep' = {
  name: 'acr-role-${resourceToken}'
  params: {
    roleName: 'ACR Token Rotator (${environmentName}, ${resourceToken})'
  }
}

module registryAccess 'modules/registry-access.bicep' = [
  for (registryId, index) in registryIds: {
    name: 'registry-access-${index}-${resourceToken}'
    scope: resourceGroup(split(registryId, '/')[2], split(registryId, '/')[4])
    params: {
      registryName: last(split(registryId, '/'))
      principalId: functionApp.outputs.principalId
      roleDefinitionId: acrRole.outputs.id
    }
  }
]

// azd stores these in the environment; the postdeploy hook reads them.
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_KEY_VAULT_NAME string = vaultName
output AZURE_KEY_VAULT_ID string = vaultId
output AZURE_KEY_VAULT_URL string = vaultUrl
output AZURE_KEY_VAULT_LOCATION string = vaultAccess.outputs.location
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output ACR_TOKEN_ROTATOR_ROLE_ID string = acrRole.outputs.id

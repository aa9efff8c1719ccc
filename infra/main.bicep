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
@description('Region of the resource group and of the resources in it: one that offers Flex Consumption (az functionapp list-flexconsumption-locations).')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object ID of the identity running azd. With deployerCanReadSecrets, it may read secret values of a vault this deployment creates.')
param principalId string = ''

@minLength(1)
@description('What the rotator manages (ROTATOR_REGISTRIES), each entry a registry ID (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>), a resource group ID (every registry in it) or a subscription ID (/subscriptions/<id>: every registry in it), in any subscription of the tenant. The custom role is assigned at exactly that scope.')
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

@description('Hours a credential that was current in Key Vault stays valid after it is superseded (overlap guarantee); validityDays - renewBeforeDays must cover it.')
@minValue(0)
@maxValue(2160)
param minOverlapHours int = 24

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
@maxValue(170)
param verifyTimeoutSeconds int = 90

@description('Bound of one Azure call, retries and waits included, in seconds (README: Time bounds).')
@minValue(5)
@maxValue(60)
param callTimeoutSeconds int = 30

@description('Longest Retry-After the rotator waits for, in seconds; a longer one fails the call at once (transient).')
@minValue(0)
@maxValue(60)
param maxRetryAfterSeconds int = 10

@description('Bound of one token\'s run, in seconds; must exceed verifyTimeoutSeconds + callTimeoutSeconds.')
@minValue(30)
@maxValue(200)
param runTimeoutSeconds int = 180

@description('Tolerated clock difference between the app, ARM and Key Vault, in seconds.')
@minValue(0)
@maxValue(3600)
param clockSkewSeconds int = 300

@description('Also publish acr-<registry>-<token>-dockerconfigjson secrets for Kubernetes.')
param dockerConfigJson bool = false

@description('Blob container of the per-token leases.')
param leaseContainerName string = 'acr-token-rotator-locks'

@description('Storage queue of rotation messages (one per due token); failed ones end in <name>-poison.')
@minLength(3)
@maxLength(56)
param queueName string = 'acr-token-rotations'

@description('Blob container receiving undeliverable Event Grid events.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Grant the deployer (principalId) Key Vault Secrets User on a vault this deployment creates.')
param deployerCanReadSecrets bool = true

@description('Extra tags for every resource.')
param extraTags object = {}

@description('SystemAssigned: the app runs as its own identity. UserAssigned: as a user-assigned identity, granted its roles before the app exists and kept when the app is re-created.')
@allowed([
  'SystemAssigned'
  'UserAssigned'
])
param identityType string = 'SystemAssigned'

@description('With identityType UserAssigned: resource ID of an existing user-assigned identity to use; empty creates id-<token> in the resource group.')
param existingIdentityId string = ''

@description('Upper bound of instances Flex Consumption scales the app out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance, in MB.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Spread the plan over availability zones; only in regions where Flex Consumption offers it.')
param zoneRedundant bool = false

@description('Client ID of an Entra app registration: turns on Entra ID authentication for the HTTP API (callers need a token for it and a function key). Empty: function keys only.')
param apiAuthClientId string = ''

@description('Object IDs of the groups whose members may call the HTTP API (with apiAuthClientId); empty: no group restriction.')
param apiAuthAllowedGroups array = []

@description('Object IDs of users or service principals that may call the HTTP API (with apiAuthClientId); empty: no restriction by identity.')
param apiAuthAllowedPrincipals array = []

@description('Client IDs of applications that may call the HTTP API (with apiAuthClientId); empty: no restriction by application.')
param apiAuthAllowedApplications array = []

@description('Create a virtual network: VNet integration for the app\'s outbound calls, private endpoints for its storage account and the vault.')
param vnetEnabled bool = false

@description('With vnetEnabled: address range of the app subnet (VNet integration, delegated to Microsoft.App/environments).')
param vnetAppSubnetPrefix string = '10.90.0.0/24'

@description('With vnetEnabled: address range of the private endpoint subnet.')
param vnetPrivateEndpointSubnetPrefix string = '10.90.1.0/24'

@description('Public network access of a vault this deployment creates: Enabled (consumers anywhere, with a token and a data role) or Disabled (private endpoints and trusted services only).')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Export the app\'s logs and metrics with OpenTelemetry (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY): structured log fields in customDimensions and the rotator\'s metrics, which the expiry and poison alerts read. false: log fields only inside each line\'s JSON message, no metrics.')
param openTelemetry bool = true

@description('Email address that receives the alerts; empty: none (the alerts still show in the portal).')
param alertEmail string = ''

@secure()
@description('HTTPS endpoint (webhook) that receives the alerts in the common alert schema; empty: none.')
param alertWebhookUrl string = ''

@description('The expiry alert (and GET /api/health) report a managed password or certificate expiring within this many days.')
@minValue(1)
@maxValue(3650)
param expiryAlertDays int = 14

@description('Alert when no scan completed for this many hours: two periods of the schedule (12 for every 6 hours).')
@minValue(1)
@maxValue(48)
param scanSilenceAlertHours int = 12

@description('With existingKeyVaultId: also send that vault\'s AuditEvent log to the workspace (needs the right to write its diagnostic settings). A vault this deployment creates always gets it.')
param auditExistingKeyVault bool = false

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
var useUserAssignedIdentity = (identityType == 'UserAssigned')
var createIdentity = useUserAssignedIdentity && empty(existingIdentityId)
var useExistingIdentity = useUserAssignedIdentity && (!empty(existingIdentityId))
var existingIdentityParts = split(existingIdentityId, '/')

// The ROTATOR_REGISTRIES entries (rotator/core/resource_ids.py parse_target_scope accepts a registry,
// resource group or subscription ID, case-insensitive, with or without a trailing slash) as ARM scope
// parts; tests/infra/test_scopes.py evaluates these two variables for every form and compares.
// (Comparisons are parenthesised: the offline parser the tests use, pycep, gets their precedence wrong.)
var registryScopeIds = [for id in registryIds: endsWith(trim(id), '/') ? substring(trim(id), 0, length(trim(id)) - 1) : trim(id)]
var targets = [for id in registryScopeIds: {
  subscriptionId: split(id, '/')[2]
  resourceGroup: (length(split(id, '/')) >= 5) ? split(id, '/')[4] : ''
  registry: (length(split(id, '/')) == 9) ? split(id, '/')[8] : ''
}]
// The custom role must be assignable in every subscription an entry is in.
var targetSubscriptions = [for target in targets: '/subscriptions/${target.subscriptionId}']

// Every ROTATOR_* setting the code reads (rotator/settings.py SETTINGS), as app settings; tests/infra
// checks the names against the code. ROTATOR_ARM_ENDPOINT is the ARM endpoint of the cloud deployed
// to (the one setting tests/infra/crosscheck.py RELAXATIONS allows to differ from devstack's env).
// ROTATOR_IDENTITY_CLIENT_ID follows identityType: the user-assigned identity's client ID, or empty
// (the system-assigned identity).
var rotatorSettings = {
  ROTATOR_REGISTRIES: join(registryScopeIds, ',')
  ROTATOR_VAULT_URL: vaultUrl
  ROTATOR_VALIDITY_DAYS: string(validityDays)
  ROTATOR_RENEW_BEFORE_DAYS: string(renewBeforeDays)
  ROTATOR_MIN_OVERLAP_HOURS: string(minOverlapHours)
  ROTATOR_MAX_PARALLEL: string(maxParallel)
  ROTATOR_INCLUDE_TOKENS: includeTokens
  ROTATOR_EXCLUDE_TOKENS: excludeTokens
  ROTATOR_ADOPT_UNMANAGED: adoptUnmanaged ? 'true' : 'false'
  ROTATOR_VERIFY_TIMEOUT_SECONDS: string(verifyTimeoutSeconds)
  ROTATOR_CALL_TIMEOUT_SECONDS: string(callTimeoutSeconds)
  ROTATOR_MAX_RETRY_AFTER_SECONDS: string(maxRetryAfterSeconds)
  ROTATOR_RUN_TIMEOUT_SECONDS: string(runTimeoutSeconds)
  ROTATOR_CLOCK_SKEW_SECONDS: string(clockSkewSeconds)
  ROTATOR_DOCKERCONFIGJSON: dockerConfigJson ? 'true' : 'false'
  ROTATOR_LEASE_CONTAINER: leaseContainerName
  ROTATOR_SCHEDULE: schedule
  ROTATOR_QUEUE: queueName
  ROTATOR_EXPIRY_ALERT_DAYS: string(expiryAlertDays)
  ROTATOR_ARM_ENDPOINT: environment().resourceManager
  ROTATOR_IDENTITY_CLIENT_ID: userIdentityClientId
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
    queueName: queueName
    deadLetterContainerName: deadLetterContainerName
    privateNetworkOnly: vnetEnabled
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module keyVault 'modules/keyvault.bicep' = if (createVault) {
  name: 'keyvault-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    name: vaultName
    publicNetworkAccess: keyVaultPublicNetworkAccess
  }
}

// Who read, wrote or listed the rotated secrets: Key Vault's AuditEvent log, in the vault's resource group.
module vaultAudit 'modules/vault-audit.bicep' = if (createVault || auditExistingKeyVault) {
  name: 'vault-audit-${resourceToken}'
  scope: resourceGroup(vaultSubscriptionId, vaultResourceGroupName)
  dependsOn: [
    keyVault
  ]
  params: {
    vaultName: vaultName
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    nameSuffix: resourceToken
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
    expiryAlertDays: expiryAlertDays
    scanSilenceAlertHours: scanSilenceAlertHours
    deadLetterContainerName: deadLetterContainerName
  }
}

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'vnet-${resourceToken}'
    appSubnetPrefix: vnetAppSubnetPrefix
    privateEndpointSubnetPrefix: vnetPrivateEndpointSubnetPrefix
  }
}

module privateEndpoints 'modules/private-endpoints.bicep' = if (vnetEnabled) {
  name: 'private-endpoints-${resourceToken}'
  scope: rg
  dependsOn: [
    keyVault
  ]
  params: {
    location: location
    tags: tags
    subnetId: network.outputs.privateEndpointSubnetId
    storageAccountId: storage.outputs.id
    vaultId: vaultId
    zoneIds: {
      blob: network.outputs.blobZoneId
      queue: network.outputs.queueZoneId
      table: network.outputs.tableZoneId
      vault: network.outputs.vaultZoneId
    }
  }
}

module acrRole 'modules/acr-role.bicep' = {
  name: 'acr-role-${resourceToken}'
  params: {
    roleName: 'ACR Token Rotator (${environmentName}, ${resourceToken})'
    assignableScopes: union([subscription().id], targetSubscriptions)
  }
}

// identityType UserAssigned: the identity exists, and holds every role, before the app is created.
module createdIdentity 'modules/user-identity.bicep' = if (createIdentity) {
  name: 'identity-${resourceToken}'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-${resourceToken}'
  }
}

module existingIdentity 'modules/user-identity-lookup.bicep' = if (useExistingIdentity) {
  name: 'identity-lookup-${resourceToken}'
  scope: resourceGroup(useExistingIdentity ? existingIdentityParts[2] : subscription().subscriptionId,
    useExistingIdentity ? existingIdentityParts[4] : resourceGroupName)
  params: {
    name: last(existingIdentityParts)
  }
}

var userIdentityId = createIdentity ? createdIdentity.outputs.id : (useExistingIdentity ? existingIdentity.outputs.id : '')
var userIdentityClientId = createIdentity ? createdIdentity.outputs.clientId : (useExistingIdentity ? existingIdentity.outputs.clientId : '')
var userIdentityPrincipalId = createIdentity ? createdIdentity.outputs.principalId : (useExistingIdentity ? existingIdentity.outputs.principalId : '')

// The grants, in access.bicep, go to the user-assigned identity before the app exists (the app
// depends on them), or to the app's system-assigned identity once the app has one. Both declarations
// pass the same parameters but the principal; exactly one is deployed.
module userIdentityAccess 'modules/access.bicep' = if (useUserAssignedIdentity) {
  name: 'access-user-${resourceToken}'
  dependsOn: [
    keyVault
  ]
  params: {
    principalId: userIdentityPrincipalId
    appResourceGroupName: rg.name
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    vaultSubscriptionId: vaultSubscriptionId
    vaultResourceGroupName: vaultResourceGroupName
    vaultName: vaultName
    readerPrincipalId: (createVault && deployerCanReadSecrets) ? principalId : ''
    targets: targets
    roleDefinitionId: acrRole.outputs.id
    deploymentSuffix: '${resourceToken}-user'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app-${resourceToken}'
  scope: rg
  dependsOn: [
    userIdentityAccess
    privateEndpoints
  ]
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
    openTelemetry: openTelemetry
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    zoneRedundant: zoneRedundant
    userAssignedIdentityId: userIdentityId
    userAssignedIdentityClientId: userIdentityClientId
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
  }
}

module systemIdentityAccess 'modules/access.bicep' = if (!useUserAssignedIdentity) {
  name: 'access-system-${resourceToken}'
  dependsOn: [
    keyVault
  ]
  params: {
    principalId: functionApp.outputs.principalId
    appResourceGroupName: rg.name
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    vaultSubscriptionId: vaultSubscriptionId
    vaultResourceGroupName: vaultResourceGroupName
    vaultName: vaultName
    readerPrincipalId: (createVault && deployerCanReadSecrets) ? principalId : ''
    targets: targets
    roleDefinitionId: acrRole.outputs.id
    deploymentSuffix: '${resourceToken}-system'
  }
}

module apiAuth 'modules/api-auth.bicep' = if (!empty(apiAuthClientId)) {
  name: 'api-auth-${resourceToken}'
  scope: rg
  params: {
    siteName: functionApp.outputs.name
    clientId: apiAuthClientId
    allowedGroups: apiAuthAllowedGroups
    allowedPrincipals: apiAuthAllowedPrincipals
    allowedApplications: apiAuthAllowedApplications
  }
}

// azd stores these in the environment; the postdeploy hook reads them.
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_FUNCTION_APP_HOST_NAME string = functionApp.outputs.defaultHostName
output AZURE_FUNCTION_APP_PRINCIPAL_ID string = useUserAssignedIdentity ? userIdentityPrincipalId : functionApp.outputs.principalId
output AZURE_KEY_VAULT_NAME string = vaultName
output AZURE_KEY_VAULT_ID string = vaultId
output AZURE_KEY_VAULT_URL string = vaultUrl
output AZURE_KEY_VAULT_LOCATION string = useUserAssignedIdentity ? userIdentityAccess.outputs.vaultLocation : systemIdentityAccess.outputs.vaultLocation
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = deadLetterContainerName
output ACR_TOKEN_ROTATOR_ROLE_ID string = acrRole.outputs.id

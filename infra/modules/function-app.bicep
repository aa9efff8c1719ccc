// The rotator: a Python function app on the Flex Consumption plan (FC1), running as its
// system-assigned identity or as a user-assigned one. Everything it reaches (its storage, Key Vault,
// the registries, Application Insights) it reaches with that identity; no setting holds a secret.

@description('Region of the plan and the app.')
param location string

@description('Tags applied to the plan and the app.')
param tags object

@description('Name of the Flex Consumption plan.')
param planName string

@description('Name of the function app (globally unique host name).')
param name string

@description('azd service name the app is tagged with (azure.yaml services key).')
param serviceName string

@description('Storage account of the app (AzureWebJobsStorage, identity-based).')
param storageAccountName string

@description('Blob endpoint of that account, with trailing slash.')
param blobEndpoint string

@description('Queue endpoint of that account.')
param queueEndpoint string

@description('Table endpoint of that account.')
param tableEndpoint string

@description('Container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (not a secret: local auth is off on the component).')
param applicationInsightsConnectionString string

@description('The ROTATOR_* app settings, name to string value (built in main.bicep).')
param rotatorSettings object

@description('Upper bound of instances the plan scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Spread the plan\'s instances over availability zones (only in regions where FC1 offers it).')
param zoneRedundant bool = false

@description('Resource ID of a user-assigned identity to run as; empty for the system-assigned identity.')
param userAssignedIdentityId string = ''

@description('Client ID of that user-assigned identity (AZURE_CLIENT_ID); empty with the system-assigned identity.')
param userAssignedIdentityClientId string = ''

@description('Subnet (delegated to Microsoft.App/environments) for outbound VNet integration; empty for none.')
param virtualNetworkSubnetId string = ''

@description('The Functions Python worker configures the Azure Monitor OpenTelemetry distro (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY): logs with their structured fields and the rotator\'s metrics.')
param openTelemetry bool = true

@description('Memory of each instance.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

// The Python version deployed; tests/infra checks it is one the project tests (README, Python versions).
var pythonVersion = '3.12'
var useUserAssignedIdentity = !empty(userAssignedIdentityId)

// Host storage by identity: the Functions host and the rotator's lease, scan record and queue code
// (Settings.storage_blob_url and storage_queue_url read AzureWebJobsStorage__blobServiceUri and
// __queueServiceUri) use these.
var platformSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: blobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: queueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: tableEndpoint
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    // The Python worker runs sync functions in one thread pool per instance: as many threads as queue
    // messages run at once (host.json extensions.queues batchSize + newBatchThreshold; tests/infra checks).
    name: 'PYTHON_THREADPOOL_THREAD_COUNT'
    value: '10'
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: useUserAssignedIdentity ? 'ClientId=${userAssignedIdentityClientId};Authorization=AAD' : 'Authorization=AAD'
  }
  // host.json sets "telemetryMode": "OpenTelemetry" for the host; this lets the worker export its own logs and
  // metrics (rotator/telemetry.py), and the host stops forwarding the worker's logs (no duplicates).
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
    value: openTelemetry ? 'true' : 'false'
  }
]

// With a user-assigned identity, the Functions host needs its client ID for AzureWebJobsStorage
// (identity-based connections: __credential and __clientId), and the rotator's DefaultAzureCredential
// reads AZURE_CLIENT_ID. With the system-assigned identity none of them is set.
var userIdentitySettings = useUserAssignedIdentity ? [
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: userAssignedIdentityClientId
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: userAssignedIdentityClientId
  }
] : []

var rotatorAppSettings = [
  for setting in items(rotatorSettings): {
    name: setting.key
    value: setting.value
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter, off by default because FC1 offers it only in some regions. A zonal outage delays rotations at most: the timer scan catches up and Event Grid retries for 24 hours, while consumers keep valid credentials (rotation starts renewBeforeDays early).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid pushes to the keyvault_events function over the public endpoint (an inbound private endpoint would stop that delivery; docs/deploy.md, Network); HTTP functions require function keys, and optionally an Entra token (api-auth.bicep).
  // checkov:skip=CKV_AZURE_17: Event Grid's AzureFunction delivery presents no client certificate; HTTP functions authenticate with function keys.
  // checkov:skip=CKV_AZURE_212: scale to zero by design (FC1, no always-ready instances); the work is a timer scan and retried events, not latency-sensitive traffic.
  // checkov:skip=CKV_AZURE_16: the identity is system- or user-assigned by parameter, an expression checkov cannot evaluate; tests/infra checks both branches name an identity.
  // checkov:skip=CKV_AZURE_71: same reason as CKV_AZURE_16: a managed identity in both branches.
  // checkov:skip=CKV_AZURE_213: the Flex Consumption platform manages instance health; a health-check path would only keep an otherwise idle app awake.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: useUserAssignedIdentity ? {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${userAssignedIdentityId}': {}
    }
  } : {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(platformSettings, userIdentitySettings, rotatorAppSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: useUserAssignedIdentity ? {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: userAssignedIdentityId
          } : {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// azd deploys to Flex Consumption with an Entra token; publishing with basic credentials stays off.
resource publishingPolicies 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [
  for policy in ['scm', 'ftp']: {
    parent: app
    name: policy
    properties: {
      allow: false
    }
  }
]

output id string = app.id
output name string = app.name
// Empty with a user-assigned identity (main.bicep then uses the identity's own principal ID).
output principalId string = useUserAssignedIdentity ? '' : app.identity.principalId
output defaultHostName string = app.properties.defaultHostName

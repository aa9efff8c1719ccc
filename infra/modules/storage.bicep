// The function app's own storage account (AzureWebJobsStorage), reached only by Entra identity:
// shared keys are off, so no connection string with a secret exists anywhere.
// Containers: the Flex Consumption deployment package, the per-token lease blobs of the rotator,
// and the Event Grid dead-letter destination. Queues: the rotation queue (one message per due token,
// ROTATOR_QUEUE) and its poison queue, where the Functions host and the rotator move failed messages.

@description('Region of the account.')
param location string

@description('Tags applied to the account.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Replication. Zone-redundant by default; the leases and the deployment package are small.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

@description('Container holding the function app deployment package (Flex Consumption).')
param deploymentContainerName string

@description('Container holding one lease blob per token (ROTATOR_LEASE_CONTAINER).')
param leaseContainerName string

@description('Container receiving Event Grid events that could not be delivered.')
param deadLetterContainerName string

@description('Queue of rotation messages (ROTATOR_QUEUE); its poison queue is <name>-poison.')
@minLength(3)
@maxLength(56)
param queueName string

@description('Resource ID of the Log Analytics workspace receiving the blob service\'s write log (the dead-letter alert reads it).')
param logAnalyticsId string

@description('Refuse traffic from public networks except trusted Azure services (Event Grid dead-lettering by identity); the app comes in through private endpoints (vnetEnabled).')
param privateNetworkOnly bool = false

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' = {
  // checkov:skip=CKV_AZURE_35: without vnetEnabled (docs/deploy.md, Network) Flex Consumption reaches its storage from changing public addresses; with it the default action is Deny. Shared keys are off, so only Entra identities with a data role get in.
  // checkov:skip=CKV_AZURE_59: Event Grid dead-lettering (a trusted service, by identity) needs the public endpoint; without vnetEnabled so do the Functions host and Flex deployments. Entra authentication only.
  // checkov:skip=CKV_AZURE_206: zone-redundant (ZRS) by default; geo-replication adds nothing for lease blobs, a re-deployable package and dead letters. skuName allows GZRS.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: privateNetworkOnly ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2024-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Writes to blobs (StorageWrite) go to the workspace: the dead-letter alert (infra/alerts/deadletter.kql) looks
// for blobs Event Grid creates in the dead-letter container. Reads are not logged (the lease traffic is writes).
resource blobWriteLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'acr-token-rotator-blob-writes'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'StorageWrite'
        enabled: true
      }
    ]
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2024-01-01' = [
  for containerName in [deploymentContainerName, leaseContainerName, deadLetterContainerName]: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2024-01-01' = {
  parent: storage
  name: 'default'
}

// The poison queue's name is the Functions queue extension's: <queue>-poison.
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2024-01-01' = [
  for name in [queueName, '${queueName}-poison']: {
    parent: queueService
    name: name
  }
]

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table

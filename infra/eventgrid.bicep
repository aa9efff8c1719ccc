// Event Grid wiring, deployed by the azd postdeploy hook (infra/hooks/postdeploy.sh) once the
// code is deployed: Event Grid refuses a subscription whose function does not exist yet.
// Subscription scope because the vault (and so its system topic) may live in another resource
// group than the app and its storage account.
targetScope = 'subscription'

@description('Resource ID of the function app (main.bicep output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Resource ID of the Key Vault the rotator publishes to (AZURE_KEY_VAULT_ID).')
param keyVaultId string

@description('Region of that vault: a system topic lives in its source\'s region (AZURE_KEY_VAULT_LOCATION).')
param keyVaultLocation string

@description('Resource ID of the app storage account receiving dead letters (AZURE_STORAGE_ACCOUNT_ID).')
param storageAccountId string

@description('Blob container receiving dead letters (EVENTGRID_DEADLETTER_CONTAINER).')
param deadLetterContainerName string

@description('Name of the system topic on the vault.')
param systemTopicName string = 'evgt-${last(split(keyVaultId, '/'))}'

@description('Tags of the system topic.')
param tags object = {}

var vaultParts = split(keyVaultId, '/')
var storageParts = split(storageAccountId, '/')
var deploymentSuffix = uniqueString(keyVaultId, functionAppId)

module topic 'modules/eventgrid-topic.bicep' = {
  name: 'eventgrid-topic-${deploymentSuffix}'
  scope: resourceGroup(vaultParts[2], vaultParts[4])
  params: {
    name: systemTopicName
    location: keyVaultLocation
    tags: tags
    keyVaultId: keyVaultId
  }
}

module deadLetterAccess 'modules/deadletter-access.bicep' = {
  name: 'eventgrid-deadletter-${deploymentSuffix}'
  scope: resourceGroup(storageParts[2], storageParts[4])
  params: {
    storageAccountName: last(storageParts)
    containerName: deadLetterContainerName
    principalId: topic.outputs.principalId
  }
}

module eventSubscription 'modules/eventgrid-subscription.bicep' = {
  name: 'eventgrid-subscription-${deploymentSuffix}'
  scope: resourceGroup(vaultParts[2], vaultParts[4])
  dependsOn: [
    deadLetterAccess
  ]
  params: {
    systemTopicName: topic.outputs.name
    functionAppId: functionAppId
    storageAccountId: storageAccountId
    deadLetterContainerName: deadLetterContainerName
  }
}

output systemTopicId string = topic.outputs.id

// Lets the vault's system topic write dead letters into one container of the app storage account,
// by identity (the account accepts no keys). Scoped to that container, not the account.

@description('Name of the app storage account (in this resource group).')
param storageAccountName string

@description('Dead-letter container.')
param containerName string

@description('Object ID of the system topic identity.')
param principalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::container.id, principalId, storageBlobDataContributor)
  scope: storage::blobService::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-token-rotator: Event Grid dead letters of the Key Vault system topic'
  }
}

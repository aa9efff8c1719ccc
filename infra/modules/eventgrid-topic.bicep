// The Event Grid system topic of the vault. Its system-assigned identity writes dead letters.
// A vault can have only one system topic: with an existing vault that already has one, remove it or
// subscribe to it by hand (docs/deploy.md).

@description('Name of the system topic.')
param name string

@description('Region of the vault.')
param location string

@description('Tags of the topic.')
param tags object

@description('Resource ID of the vault.')
param keyVaultId string

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: keyVaultId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

output id string = topic.id
output name string = topic.name
output principalId string = topic.identity.principalId

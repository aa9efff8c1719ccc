// The one event subscription: Key Vault events about the rotator's objects, to the Event Grid
// function. Event types = rotator/core/events.py HANDLED_EVENT_TYPES; target = the `keyvault_events`
// function of function_app.py (tests/infra checks both). Delivery is retried for 24 hours, then
// the event is dead-lettered to storage by the topic's identity.

@description('Name of the vault\'s system topic (in this resource group).')
param systemTopicName string

@description('Resource ID of the function app.')
param functionAppId string

@description('Resource ID of the storage account receiving dead letters.')
param storageAccountId string

@description('Blob container receiving dead letters.')
param deadLetterContainerName string

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource keyVaultEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'acr-token-rotator'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/keyvault_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      // Key Vault events carry the object name as subject; the rotator's secrets and
      // certificates are named acr-<registry>-<token>[-cert].
      subjectBeginsWith: 'acr-'
      isSubjectCaseSensitive: false
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
        'Microsoft.KeyVault.CertificateNewVersionCreated'
        'Microsoft.KeyVault.CertificateNearExpiry'
        'Microsoft.KeyVault.CertificateExpired'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = keyVaultEvents.id

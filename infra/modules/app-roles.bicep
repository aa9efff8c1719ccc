// What the function app's identity may do in its own resource group: the data plane of its
// storage account (host storage, deployment package, lease blobs) and sending telemetry.
// Every assignment is scoped to the one resource it is needed on, never the resource group.

@description('Object ID of the identity the app runs as (system- or user-assigned).')
param principalId string

@description('Name of the app storage account.')
param storageAccountName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

// Built-in role definition IDs (identical in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource storage 'Microsoft.Storage/storageAccounts@2024-01-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Blob Data Owner: the Functions host keeps its keys, timer schedule status and singleton locks in
// blobs and manages their containers; Flex Consumption reads the deployment package; the rotator
// creates its lease container and takes leases on its blobs.
// Table Data Contributor: the host records diagnostic events in a table of AzureWebJobsStorage.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in [storageBlobDataOwner, storageTableDataContributor]: {
    name: guid(storage.id, principalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: 'acr-token-rotator: function app host storage and token leases'
    }
  }
]

// Local auth is off on the component: telemetry is accepted only with an Entra token of this role.
resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'acr-token-rotator: send telemetry with Entra authentication'
  }
}

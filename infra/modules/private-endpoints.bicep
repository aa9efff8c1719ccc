// With vnetEnabled: private endpoints for the app's storage account (blob, queue, table: the Functions
// host and the leases) and for the vault, in the private endpoint subnet of network.bicep.

@description('Region of the endpoints (the network\'s).')
param location string

@description('Tags of every endpoint.')
param tags object

@description('Subnet the endpoints get their addresses in.')
param subnetId string

@description('Resource ID of the app storage account.')
param storageAccountId string

@description('Resource ID of the vault (created or existing).')
param vaultId string

@description('Private DNS zones by service: blob, queue, table, vault (network.bicep outputs).')
param zoneIds object

module storageEndpoints 'private-endpoint.bicep' = [
  for service in ['blob', 'queue', 'table']: {
    name: 'pe-${service}-${uniqueString(storageAccountId)}'
    params: {
      location: location
      tags: tags
      name: 'pe-${last(split(storageAccountId, '/'))}-${service}'
      subnetId: subnetId
      targetId: storageAccountId
      groupId: service
      privateDnsZoneId: zoneIds[service]
    }
  }
]

module vaultEndpoint 'private-endpoint.bicep' = {
  name: 'pe-vault-${uniqueString(vaultId)}'
  params: {
    location: location
    tags: tags
    name: 'pe-${last(split(vaultId, '/'))}'
    subnetId: subnetId
    targetId: vaultId
    groupId: 'vault'
    privateDnsZoneId: zoneIds.vault
  }
}

// One private endpoint with its DNS registration: a storage service (blob, queue, table) or a vault.

@description('Region of the endpoint (the network\'s).')
param location string

@description('Tags of the endpoint.')
param tags object

@description('Name of the endpoint.')
param name string

@description('Subnet the endpoint gets its address in.')
param subnetId string

@description('Resource ID of the storage account or vault.')
param targetId string

@description('Sub-resource: blob, queue, table or vault.')
@allowed([
  'blob'
  'queue'
  'table'
  'vault'
])
param groupId string

@description('Private DNS zone that resolves the target\'s name to the endpoint.')
param privateDnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource dns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

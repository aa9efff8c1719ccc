// Reads an existing user-assigned identity (existingIdentityId): any resource group or subscription.

@description('Name of the identity (in this resource group).')
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: name
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId

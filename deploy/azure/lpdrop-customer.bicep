// The customer side of lpdrop on Azure: where drops land, and the queue that announces them.
//
// lpdrop writes a drop as parquet files under
//   az://{containerName}/{prefix}/YYYY/MM/DD/HH/<timestamp>-<uuid>/parquet/<table>/part-*.parquet
// then manifest.json, then upload.complete last. Event Grid puts one message on the Storage
// Queue for each upload.complete under the prefix: one message per committed drop.
//
// deploy/azure/lpdrop-customer.json is the same template in ARM JSON. Keep both in step:
// tests/check-azure-deploy.sh compares their parameters, resources and outputs.
// Deploy: see deploy/azure/README.md.

targetScope = 'resourceGroup'

@description('Region of every resource. Default: the resource group\'s.')
param location string = resourceGroup().location

@description('Storage account name: 3 to 24 lower-case letters and digits, unique in Azure.')
@minLength(3)
@maxLength(24)
param storageAccountName string = 'lpdrop${uniqueString(resourceGroup().id)}'

@description('Replication of the storage account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Allow shared keys (account keys, account SAS, connection strings). false = Entra ID only.')
param allowSharedKeyAccess bool = false

@description('Blob container the drops go to. No public access.')
@minLength(3)
@maxLength(63)
param containerName string = 'lpdrop'

@description('Blob prefix drops go under, without leading or trailing slash (lpdrop --out az://CONTAINER/PREFIX). Empty = the container root.')
param prefix string = 'drops'

@description('Storage Queue that receives one Event Grid event per committed drop (upload.complete).')
@minLength(3)
@maxLength(63)
param queueName string = 'lpdrop-drops'

@description('Days a deleted or overwritten blob can be restored (blob soft delete).')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

@description('Days a drop is kept before the lifecycle policy deletes it. 0 = keep forever.')
@minValue(0)
param retentionDays int = 0

@description('Object id of the principal lpdrop runs as (service principal, managed identity, user or group). Ignored when createManagedIdentity is true. Empty = no role assignment.')
param principalObjectId string = ''

@description('Type of principalObjectId.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param principalType string = 'ServicePrincipal'

@description('Create a user-assigned managed identity for lpdrop and give it the container role instead of principalObjectId.')
param createManagedIdentity bool = false

@description('Name of the managed identity (with createManagedIdentity).')
param managedIdentityName string = 'lpdrop-writer'

@description('OIDC issuer of a writer outside this tenant (AKS/EKS/GKE cluster issuer URL, ...). Empty = no federated credential. With createManagedIdentity only.')
param federatedIssuer string = ''

@description('Subject of the federated token, e.g. system:serviceaccount:lpdrop:lpdrop.')
param federatedSubject string = ''

@description('Audience of the federated token.')
param federatedAudience string = 'api://AzureADTokenExchange'

@description('Object id of the loader that consumes the queue and reads the drops. Empty = no role assignment.')
param loaderPrincipalObjectId string = ''

@description('Type of loaderPrincipalObjectId.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param loaderPrincipalType string = 'ServicePrincipal'

// Built-in roles.
var blobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0b4c0feb' // Storage Blob Data Contributor
var blobDataReaderRoleId = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1' // Storage Blob Data Reader
var queueMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a' // Storage Queue Data Message Sender
var queueMessageProcessorRoleId = '8a0f0c08-91a1-4084-bc3d-661d67233fed' // Storage Queue Data Message Processor

var blobPrefix = empty(prefix) ? '' : '${prefix}/'
var lpdropOut = empty(prefix) ? 'az://${containerName}' : 'az://${containerName}/${prefix}'
var assignWriterRole = createManagedIdentity || !empty(principalObjectId)
var assignLoaderRoles = !empty(loaderPrincipalObjectId)
var poisonQueueName = '${queueName}-poison'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_35: lpdrop writes from outside the customer's network. A firewall (default action Deny) needs the writer's addresses or a private endpoint: the customer's decision (README, Notes).
  //checkov:skip=CKV_AZURE_59: public network access stays on for the same reason. Set publicNetworkAccess to Disabled with a private endpoint when the writer runs inside the customer's network.
  //checkov:skip=CKV_AZURE_43: the name is the parameter storageAccountName (default lpdrop + uniqueString, 19 lower-case letters and digits, @minLength 3, @maxLength 24), which checkov cannot evaluate.
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: allowSharedKeyAccess
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    isHnsEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: queueName
}

// Where a loader moves a message it gave up on (the Storage Queue form of a dead-letter queue).
resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (retentionDays > 0) {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'lpdrop-retention'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${containerName}/${blobPrefix}'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterCreationGreaterThan: retentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

// Event Grid: BlobCreated for .../upload.complete under the prefix -> the Storage Queue.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${storageAccountName}-events'
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Event Grid delivers with its own identity, so delivery works without shared keys.
resource topicQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, systemTopic.id, queueMessageSenderRoleId)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueMessageSenderRoleId)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource uploadComplete 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: 'lpdrop-upload-complete'
  dependsOn: [
    topicQueueSender
  ]
  properties: {
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: queueName
          queueMessageTimeToLiveInSeconds: -1
        }
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${containerName}/blobs/${blobPrefix}'
      subjectEndsWith: '/upload.complete'
      isSubjectCaseSensitive: true
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

// Optional: lpdrop's own identity, with a federated credential for a writer outside Azure.
resource writerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = if (createManagedIdentity) {
  name: managedIdentityName
  location: location
}

resource writerFederation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (createManagedIdentity && !empty(federatedIssuer)) {
  parent: writerIdentity
  name: 'lpdrop-writer-federation'
  properties: {
    issuer: federatedIssuer
    subject: federatedSubject
    audiences: [
      federatedAudience
    ]
  }
}

// lpdrop: read, write, list and delete blobs in the container, and nothing else.
resource writerRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignWriterRole) {
  name: guid(container.id, createManagedIdentity ? writerIdentity.id : principalObjectId, blobDataContributorRoleId)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributorRoleId)
    principalId: createManagedIdentity ? writerIdentity!.properties.principalId : principalObjectId
    principalType: createManagedIdentity ? 'ServicePrincipal' : principalType
  }
}

// The loader: read the drops, and receive and delete queue messages.
resource loaderBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignLoaderRoles) {
  name: guid(container.id, loaderPrincipalObjectId, blobDataReaderRoleId)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataReaderRoleId)
    principalId: loaderPrincipalObjectId
    principalType: loaderPrincipalType
  }
}

resource loaderQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignLoaderRoles) {
  name: guid(queue.id, loaderPrincipalObjectId, queueMessageProcessorRoleId)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueMessageProcessorRoleId)
    principalId: loaderPrincipalObjectId
    principalType: loaderPrincipalType
  }
}

resource loaderPoisonRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignLoaderRoles) {
  name: guid(poisonQueue.id, loaderPrincipalObjectId, queueMessageSenderRoleId)
  scope: poisonQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', queueMessageSenderRoleId)
    principalId: loaderPrincipalObjectId
    principalType: loaderPrincipalType
  }
}

output storageAccountName string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output containerName string = containerName
output prefix string = prefix
output queueName string = queueName
output poisonQueueName string = poisonQueueName
output lpdropOut string = lpdropOut
output tenantId string = tenant().tenantId
output identityClientId string = createManagedIdentity ? writerIdentity!.properties.clientId : ''
output identityPrincipalId string = createManagedIdentity ? writerIdentity!.properties.principalId : ''

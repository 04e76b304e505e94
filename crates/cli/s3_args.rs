//! The S3 flags of every command that reads or writes a destination.

use lpdrop_drop::S3Settings;

/// S3 settings; the standard AWS chain supplies credentials and `AWS_ENDPOINT_URL` the endpoint.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct S3Args {
    /// Server-side encryption on writes: s3 (SSE-S3) or kms (SSE-KMS).
    #[arg(long = "s3-sse", env = "LPDROP_S3_SSE", value_name = "s3|kms")]
    pub sse: Option<String>,
    /// KMS key id or ARN for --s3-sse kms (the bucket's default key when absent).
    #[arg(
        long = "s3-kms-key-id",
        env = "LPDROP_S3_KMS_KEY_ID",
        value_name = "KEY"
    )]
    pub kms_key_id: Option<String>,
    /// Storage class of written objects, e.g. STANDARD_IA.
    #[arg(
        long = "s3-storage-class",
        env = "LPDROP_S3_STORAGE_CLASS",
        value_name = "CLASS"
    )]
    pub storage_class: Option<String>,
    /// Give the bucket owner full control of written objects (cross-account writes).
    #[arg(
        long = "s3-bucket-owner-full-control",
        env = "LPDROP_S3_BUCKET_OWNER_FULL_CONTROL"
    )]
    pub bucket_owner_full_control: bool,
    /// Role to assume for S3 (the customer's role that trusts lpdrop).
    #[arg(long = "s3-role-arn", env = "LPDROP_S3_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// External id required by that role's trust policy.
    #[arg(
        long = "s3-external-id",
        env = "LPDROP_S3_EXTERNAL_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,
}

impl S3Args {
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            sse: self.sse.clone(),
            kms_key_id: self.kms_key_id.clone(),
            storage_class: self.storage_class.clone(),
            bucket_owner_full_control: self.bucket_owner_full_control,
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

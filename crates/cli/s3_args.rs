//! The store flags of every command that reads or writes a destination: S3's, and how hard
//! to retry a request to a remote store.

use lpdrop_drop::{RetryBudget, S3Settings, StoreSettings};

/// S3 settings; the standard AWS chain supplies credentials and `AWS_ENDPOINT_URL` the endpoint.
#[derive(clap::Args, Debug, Clone)]
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
    /// Attempts at each request to a remote store (S3), the first included. A 5xx,
    /// throttling, a reset connection or a timeout is retried; each retry is logged at -v.
    #[arg(
        long = "store-attempts",
        env = "LPDROP_STORE_ATTEMPTS",
        default_value_t = 8,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub store_attempts: u32,
    /// Wait before the first retry of a request to a remote store; it doubles with each
    /// retry, up to 5s, with jitter.
    #[arg(
        long = "store-retry-delay",
        env = "LPDROP_STORE_RETRY_DELAY",
        default_value = "200ms",
        value_name = "DURATION"
    )]
    pub store_retry_delay: lpdrop_settings::Duration,
    /// Files larger than this many bytes go up to S3 as multipart uploads, and to Azure as
    /// blocks (tests use 0 to send every file in parts).
    #[arg(
        long = "s3-multipart-threshold",
        env = "LPDROP_S3_MULTIPART_THRESHOLD",
        value_name = "BYTES",
        hide = true
    )]
    pub multipart_threshold: Option<u64>,
}

impl S3Args {
    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            s3: S3Settings {
                sse: self.sse.clone(),
                kms_key_id: self.kms_key_id.clone(),
                storage_class: self.storage_class.clone(),
                bucket_owner_full_control: self.bucket_owner_full_control,
                role_arn: self.role_arn.clone(),
                external_id: self.external_id.clone(),
                multipart_threshold: self.multipart_threshold,
            },
            retry: RetryBudget {
                attempts: self.store_attempts,
                first_delay: self.store_retry_delay.get(),
                ..RetryBudget::default()
            },
        }
    }
}

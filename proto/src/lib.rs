//! taskscope's Observe gRPC schema (`proto/observe.proto`): the generated messages and service,
//! and conversions from and to the trace model in [`traces`].
//!
//! ```
//! use proto::v1;
//! let key = traces::Key::from("sum-1");
//! let wire: v1::Key = (&key).into();
//! assert_eq!(traces::Key::try_from(&wire).unwrap(), key);
//! ```

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!("generated/taskscope.observe.v1.rs");
}

mod convert;

pub use convert::{
    InvalidMessage, MAX_ERROR_BYTES, MAX_GROUP_DEPENDENCIES, MAX_PROGRESS_GROUPS,
    MAX_PROGRESS_RUNNING,
};

mod batch;

pub use batch::{BATCH_BYTES, MAX_MESSAGE_BYTES, RecordsBatcher, RecordsDecoder};

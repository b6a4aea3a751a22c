//! The audit trail: one event per change of a key, written in the change's own transaction
//! (by the write use cases), kept for a configured number of days (DynamoDB's TTL). What an
//! event records is [`event`]'s; listing events is `page::events`'s, with the key list's
//! paging rules.

pub mod event;

pub use event::{
    ActingSecret, Action, Actor, ActorKind, Adjustment, Change, Changes, Event, EventId, EventView,
    Leak, UnknownAction, WhichSecret, time_value,
};

//! Unit tests of the attestation on made-up snapshots.

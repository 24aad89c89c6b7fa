//! Test support: a fault-injecting proxy.
#![allow(dead_code)]

pub mod proxy;

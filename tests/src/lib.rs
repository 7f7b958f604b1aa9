//! Shared harness for the end-to-end tests: starting skytimed, finding free ports, running chrony and ntpdig.

//! Cross-crate and multi-process tests live in `tests/tests/`. This library is empty on purpose:
//! the package exists so that those tests can depend on every crate of the workspace.

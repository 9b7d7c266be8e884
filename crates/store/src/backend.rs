//! A backend: the state of its token role (`T`: the hot path in the backend's own plain code)
//! beside its pools (`Q`: the SQL shared by both backends, `crate::sql`). The cold roles are
//! implemented once for every `Backend<T, Q>`; the token role once per backend:
//! `crate::sqlite::tokens` and `crate::sql::tokens`.

pub struct Backend<T, Q> {
    pub(crate) tokens: T,
    pub(crate) sql: Q,
}

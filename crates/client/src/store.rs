//! Where the client keeps its tokens: a pluggable [`TokenStore`], with an in-memory store and
//! a JSON file store. Neither ever holds a password or a client secret: only what the token
//! endpoint returned.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The tokens of one session with the authorization server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// As the server spelled it (`Bearer`, `bearer`, `JWT`).
    pub token_type: String,
    /// When the access token expires (Unix seconds, by the client's clock), if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The grant that started this session (`password`, `authorization_code`,
    /// `client_credentials`). Client-credentials sessions get a new token by asking again,
    /// never by refreshing (RFC 6749 §4.4.3: no refresh token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

impl std::fmt::Debug for Tokens {
    /// Never prints a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("grant", &self.grant)
            .finish()
    }
}

/// Persistence for [`Tokens`]. The client calls `save` after every grant and refresh, while it
/// holds its refresh lock, so a rotated refresh token is stored before anyone can use it.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self) -> Result<Option<Tokens>, StoreError>;
    async fn save(&self, tokens: &Tokens) -> Result<(), StoreError>;
    async fn clear(&self) -> Result<(), StoreError>;
}

/// Keeps the tokens in memory only (the default).
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<Option<Tokens>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self) -> Result<Option<Tokens>, StoreError> {
        Ok(self.tokens.lock().map_err(poisoned)?.clone())
    }
    async fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        *self.tokens.lock().map_err(poisoned)? = Some(tokens.clone());
        Ok(())
    }
    async fn clear(&self) -> Result<(), StoreError> {
        *self.tokens.lock().map_err(poisoned)? = None;
        Ok(())
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Other("token store lock poisoned".into())
}

/// The JSON document a [`FileStore`] writes: where the session lives (server, client id, token
/// endpoint) and its tokens. No password, no client secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
}

/// Keeps the tokens in a JSON file, created with mode 0600 (its directory, when created,
/// 0700) and replaced atomically (write a temporary file beside it, fsync, rename), so a crash
/// never leaves half a file and a reader never sees one.
pub struct FileStore {
    path: PathBuf,
    identity: Mutex<Option<(String, String, String)>>,
    lock: tokio::sync::Mutex<()>,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            identity: Mutex::new(None),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Also records the server, client id and token endpoint path in the file (what a command
    /// line needs to pick the session up again), on the next save.
    pub fn with_identity(
        self,
        server: impl Into<String>,
        client_id: impl Into<String>,
        token_path: impl Into<String>,
    ) -> Self {
        if let Ok(mut g) = self.identity.lock() {
            *g = Some((server.into(), client_id.into(), token_path.into()));
        }
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole file; `None` when it does not exist.
    pub fn read(&self) -> Result<Option<CredentialsFile>, StoreError> {
        read_file(&self.path)
    }

    fn write(&self, doc: &CredentialsFile) -> Result<(), StoreError> {
        write_atomic(&self.path, doc)
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_file(path: &Path) -> Result<Option<CredentialsFile>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StoreError::Format {
            path: path.display().to_string(),
            source,
        })
}

fn write_atomic(path: &Path, doc: &CredentialsFile) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        create_private_dir(&dir).map_err(io_err(&dir))?;
    }
    let json = serde_json::to_vec_pretty(doc).map_err(|source| StoreError::Format {
        path: path.display().to_string(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "credentials".into());
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
    let result = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self) -> Result<Option<Tokens>, StoreError> {
        let _g = self.lock.lock().await;
        Ok(self.read()?.and_then(|d| d.tokens))
    }

    async fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        let _g = self.lock.lock().await;
        let mut doc = self.read().ok().flatten().unwrap_or_default();
        if let Some((server, client_id, token_path)) =
            self.identity.lock().map_err(poisoned)?.clone()
        {
            doc.server = Some(server);
            doc.client_id = Some(client_id);
            doc.token_path = Some(token_path);
        }
        doc.tokens = Some(tokens.clone());
        self.write(&doc)
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let _g = self.lock.lock().await;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokens(refresh: &str) -> Tokens {
        Tokens {
            access_token: "access-secret".into(),
            token_type: "Bearer".into(),
            expires_at: Some(100),
            refresh_token: Some(refresh.into()),
            scope: Some("read".into()),
            grant: Some("password".into()),
        }
    }

    #[tokio::test]
    async fn file_store_round_trips_privately_and_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/credentials.json");
        let store = FileStore::new(&path).with_identity("http://h", "cid", "/oauth/token/");
        assert_eq!(store.load().await.unwrap(), None);
        store.save(&tokens("r1")).await.unwrap();
        store.save(&tokens("r2")).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(tokens("r2")));
        let doc = store.read().unwrap().unwrap();
        assert_eq!(doc.server.as_deref(), Some("http://h"));
        assert_eq!(doc.client_id.as_deref(), Some("cid"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("credentials.json")]);
        // A second store on the same file without identity keeps the recorded one.
        let again = FileStore::new(&path);
        again.save(&tokens("r3")).await.unwrap();
        assert_eq!(
            again.read().unwrap().unwrap().client_id.as_deref(),
            Some("cid")
        );
        again.clear().await.unwrap();
        assert!(!path.exists());
        again.clear().await.unwrap();
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "not json").unwrap();
        let e = FileStore::new(&path).load().await.unwrap_err();
        assert!(e.to_string().contains("not a credentials file"), "{e}");
    }

    #[test]
    fn debug_never_shows_tokens() {
        let s = format!("{:?}", tokens("refresh-secret"));
        assert!(
            !s.contains("access-secret") && !s.contains("refresh-secret"),
            "{s}"
        );
    }
}

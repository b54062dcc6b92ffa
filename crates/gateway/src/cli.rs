//! `crunch-gateway` subcommands besides `serve`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use crunch_service::DbArgs;

use crate::auth::{generate_key, hash_key};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (shown once: only its hash is stored).
    Create {
        /// A label for the key.
        #[arg(long)]
        name: String,
    },
    /// Make sure FILE holds a valid key: keep it if it is valid, else create
    /// one and write it there (used by scripts/dev-up.sh for .dev/api-key).
    Ensure {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "dev")]
        name: String,
    },
    /// List keys (ids, names, dates; never the keys).
    List,
    /// Revoke a key by id.
    Revoke { id: uuid::Uuid },
}

fn conn(db: &DbArgs) -> anyhow::Result<crunch_store::pool::PgPool> {
    crunch_store::connect(&db.pool_config()).context("building the database pool")
}

pub fn migrate(db: &DbArgs) -> anyhow::Result<()> {
    let pool = conn(db)?;
    let mut c = pool.get().context("connecting to the database")?;
    let applied = crunch_store::run_migrations(&mut c)?;
    println!("migrations applied: {}", if applied.is_empty() { "none pending".to_owned() } else { applied.join(", ") });
    Ok(())
}

pub fn keys(db: &DbArgs, cmd: KeysCommand) -> anyhow::Result<()> {
    let pool = conn(db)?;
    let mut c = pool.get().context("connecting to the database")?;
    crunch_store::run_migrations(&mut c)?;
    match cmd {
        KeysCommand::Create { name } => {
            let key = generate_key();
            let row = crunch_store::keys::insert_key(&mut c, &name, &hash_key(&key))?;
            eprintln!("created key {} ({})", row.id, row.name);
            println!("{key}");
        }
        KeysCommand::Ensure { file, name } => {
            if let Ok(existing) = std::fs::read_to_string(&file) {
                let existing = existing.trim();
                if crunch_store::keys::find_active_by_hash(&mut c, &hash_key(existing))?.is_some() {
                    eprintln!("{} holds a valid key", file.display());
                    return Ok(());
                }
            }
            let key = generate_key();
            crunch_store::keys::insert_key(&mut c, &name, &hash_key(&key))?;
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&file, format!("{key}\n")).with_context(|| format!("writing {}", file.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
            eprintln!("wrote a new key to {}", file.display());
        }
        KeysCommand::List => {
            for k in crunch_store::keys::list_keys(&mut c)? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{}", k.id, k.name, k.created_at.to_rfc3339(), state);
            }
        }
        KeysCommand::Revoke { id } => {
            if crunch_store::keys::revoke_key(&mut c, id)? {
                println!("revoked {id}");
            } else {
                anyhow::bail!("no active key with id {id}");
            }
        }
    }
    Ok(())
}

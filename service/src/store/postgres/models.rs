//! [`ModelStore`] on PostgreSQL: the `models`, `model_files` and `active_models` tables of
//! migration 7.

use async_trait::async_trait;

use super::{col, pg, PgStore};
use crate::error::Result;
use crate::store::models::{ModelStore, StoredModel};

#[async_trait]
impl ModelStore for PgStore {
    async fn model_ids(&self) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT id FROM models ORDER BY id", &[])
            .await
            .map_err(pg("listing the stored models"))?;
        rows.iter().map(|r| col(r, 0, "models")).collect()
    }

    async fn put_model(&self, model: &StoredModel) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c
            .transaction()
            .await
            .map_err(pg("starting a transaction"))?;
        let added = tx
            .execute(
                "INSERT INTO models (id, task) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&model.id, &model.task],
            )
            .await
            .map_err(pg("storing a model"))?;
        if added == 1 {
            for (name, bytes) in &model.files {
                tx.execute(
                    "INSERT INTO model_files (model_id, name, bytes) VALUES ($1, $2, $3)",
                    &[&model.id, name, bytes],
                )
                .await
                .map_err(pg("storing a model's file"))?;
            }
        }
        tx.commit().await.map_err(pg("committing a model"))?;
        Ok(())
    }

    async fn get_model(&self, id: &str) -> Result<Option<StoredModel>> {
        let c = self.client().await?;
        let Some(m) = c
            .query_opt("SELECT task FROM models WHERE id = $1", &[&id])
            .await
            .map_err(pg("reading a stored model"))?
        else {
            return Ok(None);
        };
        let files = c
            .query(
                "SELECT name, bytes FROM model_files WHERE model_id = $1 ORDER BY name",
                &[&id],
            )
            .await
            .map_err(pg("reading a stored model's files"))?
            .iter()
            .map(|r| Ok((col(r, 0, "model_files")?, col(r, 1, "model_files")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(StoredModel {
            id: id.to_string(),
            task: col(&m, 0, "models")?,
            files,
        }))
    }

    async fn active_models(&self) -> Result<Vec<(String, String)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT task, model_id FROM active_models ORDER BY task",
                &[],
            )
            .await
            .map_err(pg("reading the active models"))?;
        rows.iter()
            .map(|r| Ok((col(r, 0, "active_models")?, col(r, 1, "active_models")?)))
            .collect()
    }

    async fn set_active(&self, task: &str, id: &str, only_if_none: bool) -> Result<()> {
        let c = self.client().await?;
        let sql = if only_if_none {
            "INSERT INTO active_models (task, model_id) VALUES ($1, $2)
             ON CONFLICT (task) DO NOTHING"
        } else {
            "INSERT INTO active_models (task, model_id) VALUES ($1, $2)
             ON CONFLICT (task) DO UPDATE SET model_id = excluded.model_id,
               activated_at = now()"
        };
        c.execute(sql, &[&task, &id])
            .await
            .map_err(pg("setting the active model"))?;
        Ok(())
    }
}

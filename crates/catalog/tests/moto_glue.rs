//! The catalog against moto's Glue, through the real aws-sdk-glue client.

use lpdrop_catalog::{Catalog, CatalogError, DropToRegister};
use lpdrop_tables::{ColumnMapping, Source, tables_of};
use lpdrop_testkit::Moto;

const ROOT_A: &str =
    "s3://bi/acme/2026/01/02/03/2026-01-02-03-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000001";
const ROOT_B: &str =
    "s3://bi/acme/2026/01/02/04/2026-01-02-04-04-05-0b6f3c1e-aaaa-4bbb-8ccc-000000000002";

fn drop_at(root: &str, tables: Vec<&'static lpdrop_tables::TableDef>) -> DropToRegister {
    DropToRegister {
        prefix_uri: "s3://bi/acme/".into(),
        root_uri: root.into(),
        tables,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_tables_once_and_one_partition_per_drop() {
    let moto = Moto::start();
    let glue = moto.glue();
    let catalog = Catalog::with_client(glue.clone(), "lpdrop_test");
    let chat = tables_of(Source::Chat).to_vec();

    let first = catalog
        .register(&drop_at(ROOT_A, chat.clone()))
        .await
        .unwrap();
    assert!(first.database_created);
    assert_eq!(first.tables_created.len(), chat.len());
    assert_eq!(first.partitions_created, chat.len());
    let again = catalog
        .register(&drop_at(ROOT_A, chat.clone()))
        .await
        .unwrap();
    assert!(again.unchanged(), "{again:?}");
    assert_eq!(again.partitions_existing, chat.len());
    assert!(
        catalog
            .is_registered(&drop_at(ROOT_A, chat.clone()))
            .await
            .unwrap()
    );
    assert!(
        !catalog
            .is_registered(&drop_at(ROOT_B, chat.clone()))
            .await
            .unwrap()
    );
    let second = catalog
        .register(&drop_at(ROOT_B, chat.clone()))
        .await
        .unwrap();
    assert!(second.tables_created.is_empty());
    assert_eq!(second.partitions_created, chat.len());

    for t in &chat {
        let table = glue
            .get_table()
            .database_name("lpdrop_test")
            .name(t.name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        assert_eq!(table.table_type(), Some("EXTERNAL_TABLE"));
        let sd = table.storage_descriptor().unwrap();
        assert_eq!(sd.location(), Some("s3://bi/acme/"));
        let columns: Vec<(String, String)> = sd
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.r#type().unwrap().to_string()))
            .collect();
        let expected: Vec<(String, String)> = t
            .all_columns()
            .map(|c| {
                (
                    c.name.to_string(),
                    lpdrop_tables::ddl::athena_type(c.ty).to_string(),
                )
            })
            .collect();
        assert_eq!(columns, expected, "{}", t.name);
        let parts = glue
            .get_partitions()
            .database_name("lpdrop_test")
            .table_name(t.name)
            .send()
            .await
            .unwrap();
        let mut locations: Vec<String> = parts
            .partitions()
            .iter()
            .map(|p| {
                p.storage_descriptor()
                    .unwrap()
                    .location()
                    .unwrap()
                    .to_string()
            })
            .collect();
        locations.sort();
        assert_eq!(
            locations,
            vec![
                format!("{ROOT_A}/parquet/{}/", t.name),
                format!("{ROOT_B}/parquet/{}/", t.name)
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_adds_columns_and_a_type_conflict_is_an_error() {
    let moto = Moto::start();
    let glue = moto.glue();
    let catalog = Catalog::with_client(glue.clone(), "lpdrop_map");
    let chat = tables_of(Source::Chat).to_vec();
    catalog
        .register(&drop_at(ROOT_A, chat.clone()))
        .await
        .unwrap();

    let mapping = ColumnMapping::parse(
        "[[add]]\ntable = \"chats\"\ncolumn = \"visitor_region\"\npath = \"visitorInfo.region\"\ntype = \"string\"\n",
    );
    let Ok(mapping) = mapping else {
        panic!("mapping: {}", mapping.unwrap_err());
    };
    let mapped = mapping.tables_of(Source::Chat);
    let done = catalog.register(&drop_at(ROOT_B, mapped)).await.unwrap();
    assert_eq!(done.columns_added, vec!["chats.visitor_region".to_string()]);
    let table = glue
        .get_table()
        .database_name("lpdrop_map")
        .name("chats")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let names: Vec<&str> = table
        .storage_descriptor()
        .unwrap()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(names.last(), Some(&"visitor_region"));
    assert_eq!(
        names.len(),
        tables_of(Source::Chat)[0].all_columns().count() + 1
    );

    let conflicting = ColumnMapping::parse(
        "[[add]]\ntable = \"chats\"\ncolumn = \"visitor_region\"\npath = \"visitorInfo.region\"\ntype = \"int64\"\n",
    )
    .unwrap();
    let err = catalog
        .register(&drop_at(ROOT_A, conflicting.tables_of(Source::Chat)))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Conflict(_)), "{err}");
    assert!(
        err.to_string().contains("visitor_region is string"),
        "{err}"
    );
}

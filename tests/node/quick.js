// The Node SDK's quick setup against this cluster: createCollection({dimension}) makes an
// AUTOINDEX-indexed, loaded collection; insert, flushSync (which polls GetFlushState by
// segment IDs), search. Run by tests/compat.rs: node quick.js HOST:PORT [MODULE]
// (MODULE: the SDK package to use, e.g. milvus-sdk-3-0, an alias of a newer release).
const { MilvusClient } = require(process.argv[3] || '@zilliz/milvus2-sdk-node');

function check(cond, what) {
  if (!cond) {
    throw new Error(what);
  }
}

(async () => {
  const client = new MilvusClient({ address: process.argv[2], timeout: 60000 });
  const name = 'node_quick';
  await client.dropCollection({ collection_name: name });
  let r = await client.createCollection({ collection_name: name, dimension: 8 });
  check(r.error_code === 'Success', `createCollection: ${JSON.stringify(r)}`);
  r = await client.describeIndex({ collection_name: name });
  check(r.index_descriptions.length === 1, `describeIndex: ${JSON.stringify(r)}`);
  const params = Object.fromEntries(r.index_descriptions[0].params.map((p) => [p.key, p.value]));
  check(params.index_type === 'AUTOINDEX', `quick setup index: ${JSON.stringify(params)}`);
  r = await client.getLoadState({ collection_name: name });
  check(r.state === 'LoadStateLoaded', `quick setup loads: ${JSON.stringify(r)}`);
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, vector: Array.from({ length: 8 }, (_, j) => Math.sin(i + j)) }));
  r = await client.insert({ collection_name: name, data: rows });
  check(Number(r.insert_cnt) === 100, `insert: ${JSON.stringify(r)}`);
  const started = Date.now();
  r = await client.flushSync({ collection_names: [name] });
  const took = Date.now() - started;
  check(took < 30000, `flushSync took ${took} ms`);
  r = await client.getCollectionStatistics({ collection_name: name });
  check(r.data.row_count === '100', `rows persisted after flushSync: ${JSON.stringify(r.data)}`);
  r = await client.search({ collection_name: name, data: [rows[7].vector], limit: 3 });
  check(r.results.length === 3 && String(r.results[0].id) === '7', `search: ${JSON.stringify(r.results)}`);
  console.log(JSON.stringify({ flush_sync_ms: took }));
  console.log('node quick: all checks passed');
})().catch((e) => {
  console.error('FAILED', e);
  process.exit(1);
});

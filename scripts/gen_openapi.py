#!/usr/bin/env python3
"""Writes docs/openapi.json: the OpenAPI 3.0 document of the RESTful API v2 the proxy
serves (src/roles/proxy/rest/). Every endpoint is POST with a JSON body and answers
HTTP 200 with {"code": 0, "data": ...} or {"code": <Milvus code>, "message": ...}.
tests/rest.rs checks that the document lists exactly the served paths and fuzzes them
with schemathesis. Run after changing an endpoint:  python3 scripts/gen_openapi.py
"""
import json
import pathlib

S = {"type": "string"}
I = {"type": "integer"}
B = {"type": "boolean"}
OBJ = {"type": "object", "additionalProperties": True}
STRS = {"type": "array", "items": S}
VEC = {"type": "array", "items": {"type": "number"}}
ROWS = {"type": "array", "items": OBJ}

COLL = {"dbName": S, "collectionName": S}
PART = {**COLL, "partitionName": S}
FIELD = {"type": "object", "required": ["fieldName", "dataType"], "properties": {
    "fieldName": S, "dataType": S, "elementDataType": S, "isPrimary": B, "isPartitionKey": B,
    "isClusteringKey": B, "elementTypeParams": OBJ, "nullable": B, "defaultValue": {}}}
INDEX = {"type": "object", "required": ["fieldName"], "properties": {
    "fieldName": S, "indexName": S, "metricType": S, "indexType": S, "params": OBJ}}

# path -> (summary, properties, required)
ENDPOINTS = {
    "collections/create": ("Create a collection: quick (dimension) or with a schema; quick ones and "
                           "ones with indexParams are indexed and loaded", {
        **COLL, "dimension": I, "idType": S, "autoID": B, "metricType": S, "primaryFieldName": S,
        "vectorFieldName": S, "description": S, "params": OBJ, "indexParams": {"type": "array", "items": INDEX},
        "schema": {"type": "object", "properties": {"autoID": B, "enableDynamicField": B,
                                                    "fields": {"type": "array", "items": FIELD}}}},
        ["collectionName"]),
    "collections/describe": ("Describe a collection", COLL, ["collectionName"]),
    "collections/list": ("List the collections of a database", {"dbName": S}, []),
    "collections/has": ("Whether a collection exists", COLL, ["collectionName"]),
    "collections/drop": ("Drop a collection", COLL, ["collectionName"]),
    "collections/rename": ("Rename a collection (also into another database)",
                           {**COLL, "newCollectionName": S, "newDbName": S}, ["collectionName", "newCollectionName"]),
    "collections/load": ("Load a collection", {**COLL, "replicaNumber": I}, ["collectionName"]),
    "collections/release": ("Release a collection", COLL, ["collectionName"]),
    "collections/get_load_state": ("Load state and progress", {**COLL, "partitionNames": STRS}, ["collectionName"]),
    "collections/get_stats": ("Rows persisted", COLL, ["collectionName"]),
    "collections/alter_properties": ("Set collection properties", {**COLL, "properties": OBJ},
                                     ["collectionName", "properties"]),
    "collections/drop_properties": ("Remove collection properties", {**COLL, "propertyKeys": STRS},
                                    ["collectionName", "propertyKeys"]),
    "collections/fields/alter_properties": ("Set field properties (max_length, max_capacity, mmap.enabled)",
                                            {**COLL, "fieldName": S, "fieldParams": OBJ},
                                            ["collectionName", "fieldName", "fieldParams"]),
    "collections/flush": ("Persist the collection's rows", COLL, ["collectionName"]),
    "collections/compact": ("Compact the collection's segments now (isClustering is refused)",
                            {**COLL, "isClustering": B}, ["collectionName"]),
    "collections/get_compaction_state": ("State of a compaction (Executing or Completed) and its plan counts",
                                         {"jobID": I}, []),
    "entities/insert": ("Insert rows", {**PART, "data": ROWS}, ["collectionName", "data"]),
    "entities/upsert": ("Upsert rows", {**PART, "data": ROWS}, ["collectionName", "data"]),
    "entities/delete": ("Delete the rows a filter matches", {**PART, "filter": S, "exprParams": OBJ},
                        ["collectionName", "filter"]),
    "entities/get": ("Rows by primary key", {**COLL, "id": {}, "outputFields": STRS, "partitionNames": STRS,
                                             "consistencyLevel": S}, ["collectionName", "id"]),
    "entities/query": ("Rows a filter matches", {**COLL, "filter": S, "outputFields": STRS, "partitionNames": STRS,
                                                 "limit": I, "offset": I, "exprParams": OBJ, "consistencyLevel": S},
                       ["collectionName"]),
    "entities/search": ("Vector search", {**COLL, "data": {"type": "array", "items": VEC}, "annsField": S,
                                          "filter": S, "limit": I, "offset": I, "outputFields": STRS,
                                          "searchParams": OBJ, "partitionNames": STRS, "consistencyLevel": S,
                                          "groupingField": S, "exprParams": OBJ}, ["collectionName", "data"]),
    "entities/hybrid_search": ("Hybrid search: several searches fused by a ranker",
                               {**COLL, "search": ROWS, "rerank": OBJ, "limit": I, "offset": I,
                                "outputFields": STRS, "partitionNames": STRS, "consistencyLevel": S},
                               ["collectionName", "search"]),
    "entities/advanced_search": ("Hybrid search, older path",
                                 {**COLL, "search": ROWS, "rerank": OBJ, "limit": I, "offset": I,
                                  "outputFields": STRS, "partitionNames": STRS, "consistencyLevel": S},
                                 ["collectionName", "search"]),
    "partitions/create": ("Create a partition", PART, ["collectionName", "partitionName"]),
    "partitions/drop": ("Drop a partition", PART, ["collectionName", "partitionName"]),
    "partitions/has": ("Whether a partition exists", PART, ["collectionName", "partitionName"]),
    "partitions/list": ("List partitions", COLL, ["collectionName"]),
    "partitions/load": ("Load partitions", {**COLL, "partitionNames": STRS, "replicaNumber": I},
                        ["collectionName", "partitionNames"]),
    "partitions/release": ("Release partitions", {**COLL, "partitionNames": STRS}, ["collectionName", "partitionNames"]),
    "partitions/get_stats": ("Rows persisted in a partition", PART, ["collectionName", "partitionName"]),
    "indexes/create": ("Create indexes", {**COLL, "indexParams": {"type": "array", "items": INDEX}},
                       ["collectionName", "indexParams"]),
    "indexes/describe": ("Describe an index", {**COLL, "indexName": S}, ["collectionName", "indexName"]),
    "indexes/list": ("List index names", COLL, ["collectionName"]),
    "indexes/drop": ("Drop an index", {**COLL, "indexName": S}, ["collectionName", "indexName"]),
    "indexes/alter_properties": ("Set index properties (mmap.enabled)", {**COLL, "indexName": S, "properties": OBJ},
                                 ["collectionName", "indexName", "properties"]),
    "indexes/drop_properties": ("Remove index properties", {**COLL, "indexName": S, "propertyKeys": STRS},
                                ["collectionName", "indexName", "propertyKeys"]),
    "aliases/create": ("Create an alias", {**COLL, "aliasName": S}, ["collectionName", "aliasName"]),
    "aliases/alter": ("Point an alias at another collection", {**COLL, "aliasName": S}, ["collectionName", "aliasName"]),
    "aliases/drop": ("Drop an alias", {"dbName": S, "aliasName": S}, ["aliasName"]),
    "aliases/describe": ("Describe an alias", {"dbName": S, "aliasName": S}, ["aliasName"]),
    "aliases/list": ("List aliases", {"dbName": S, "collectionName": S}, []),
    "databases/create": ("Create a database", {"dbName": S, "properties": OBJ}, ["dbName"]),
    "databases/drop": ("Drop a database", {"dbName": S}, ["dbName"]),
    "databases/list": ("List databases", {}, []),
    "databases/describe": ("Describe a database", {"dbName": S}, ["dbName"]),
    "databases/alter": ("Set database properties", {"dbName": S, "properties": OBJ}, ["dbName", "properties"]),
    "databases/drop_properties": ("Remove database properties", {"dbName": S, "propertyKeys": STRS},
                                  ["dbName", "propertyKeys"]),
    "jobs/import/create": ("Bulk import: files (paths in the bucket) become segments",
                           {**PART, "files": {"type": "array", "items": STRS}, "options": OBJ},
                           ["collectionName", "files"]),
    "jobs/import/list": ("Import jobs", {"dbName": S, "collectionName": S}, []),
    "jobs/import/get_progress": ("An import job's state and progress", {"dbName": S, "jobId": S}, ["jobId"]),
    "jobs/import/describe": ("An import job's state and progress", {"dbName": S, "jobId": S}, ["jobId"]),
}

REPLY = {"type": "object", "required": ["code"], "properties": {
    "code": I, "data": {}, "message": S, "cost": I, "topks": {"type": "array", "items": I}}}


def document():
    paths = {}
    for path, (summary, props, required) in ENDPOINTS.items():
        body = {"type": "object", "properties": props}
        if required:
            body["required"] = required
        paths["/v2/vectordb/" + path] = {"post": {
            "summary": summary,
            "operationId": path.replace("/", "_"),
            "parameters": [
                {"name": "Accept-Type-Allow-Int64", "in": "header", "required": False,
                 "schema": {"type": "string", "enum": ["true", "false"]}},
                {"name": "Request-Timeout", "in": "header", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 60}},
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": "code 0 with data, or a Milvus error code with message",
                        "content": {"application/json": {"schema": REPLY}}},
                "408": {"description": "Request-Timeout passed (code 10001)",
                        "content": {"application/json": {"schema": REPLY}}},
            },
        }}
    return {
        "openapi": "3.0.3",
        "info": {"title": "milvus-ha RESTful API v2 (Milvus 2.5 compatible)", "version": "0.1.0",
                 "description": "Served on the proxy's port beside gRPC. Errors are HTTP 200 with a "
                                "Milvus code; see README.md."},
        "paths": paths,
    }


if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
    out.write_text(json.dumps(document(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({len(ENDPOINTS)} paths)")

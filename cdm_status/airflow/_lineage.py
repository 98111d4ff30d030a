"""The datasets a CDM job reads and writes, from its definition: the lineage of a run.

Pure: no Airflow or OpenLineage import, no I/O. The definition is the job object CDM
returns for ``GET .../cdm/job/{job_name}`` (``jobs[0]``): ``from-link-name``,
``to-link-name``, ``from-connector-name``, ``to-connector-name`` and the
``from-config-values`` / ``to-config-values`` of the source and destination, each
``{"configs": [{"name": ..., "inputs": [{"name": ..., "value": ...}]}]}``.

Names follow OpenLineage's dataset naming:

* a table (JDBC databases, DWS, Hive, DLI...: ``schemaName`` or ``database`` and
  ``tableName`` or ``table``) is ``<schema>.<table>`` in the namespace of the CDM link it is
  read through, ``cdm://<cluster_id>/<link name>``: the job's definition names the link,
  not the database's host, so the link stands for the data source;
* an OBS object or directory (``bucketName`` with ``inputDirectory`` /
  ``outputDirectory``) is its path in namespace ``obs://<bucket>``, as OpenLineage names S3;
* a path without a bucket (HDFS...) or an index (Elasticsearch/CSS) is named as such in the
  link's namespace.

A side whose definition names no table, path or index (a source read with free SQL, say)
gives no dataset. ``columnList`` (``a&b&c``) gives the dataset's columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["DatasetRef", "JobLineage", "config_values", "job_definition", "job_lineage"]


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """One dataset: OpenLineage namespace and name, the CDM link and connector it is read
    or written through, and its columns when the job lists them."""

    namespace: str
    name: str
    link: str | None = None
    connector: str | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobLineage:
    """What one job reads (``inputs``) and writes (``outputs``)."""

    job_name: str
    inputs: tuple[DatasetRef, ...]
    outputs: tuple[DatasetRef, ...]


def job_definition(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The job object of a ``GET .../cdm/job/{job_name}`` answer (``jobs[0]``), or the body
    itself when it already is one."""
    jobs = body.get("jobs")
    if isinstance(jobs, list | tuple):
        if not jobs or not isinstance(jobs[0], Mapping):
            raise ValueError("the job definition has no job")
        first: Mapping[str, Any] = jobs[0]
        return first
    return body


def config_values(values: object) -> dict[str, str]:
    """``{input name: value}`` of ``{"configs": [{"inputs": [{"name", "value"}]}]}``;
    values as strings, missing or empty ones left out."""
    found: dict[str, str] = {}
    configs = values.get("configs") if isinstance(values, Mapping) else None
    # Lists, or tuples in a read-only (frozen) definition such as ``JobDefinition.raw``.
    for config in configs if isinstance(configs, list | tuple) else ():
        inputs = config.get("inputs") if isinstance(config, Mapping) else None
        for item in inputs if isinstance(inputs, list | tuple) else ():
            if not isinstance(item, Mapping):
                continue
            name, value = item.get("name"), item.get("value")
            if isinstance(name, str) and value is not None and str(value).strip():
                found[name] = str(value).strip()
    return found


def _first(inputs: Mapping[str, str], prefix: str, *keys: str) -> str | None:
    for key in keys:
        value = inputs.get(f"{prefix}.{key}")
        if value:
            return value
    return None


def _dataset(job: Mapping[str, Any], side: str, cluster_id: str) -> DatasetRef | None:
    """The dataset of one side (``from`` or ``to``) of the job, if its definition names one."""
    prefix = f"{side}JobConfig"
    inputs = config_values(job.get(f"{side}-config-values"))
    link = job.get(f"{side}-link-name")
    link = str(link) if link else None
    connector = job.get(f"{side}-connector-name")
    connector = str(connector) if connector else None
    columns_text = _first(inputs, prefix, "columnList")
    columns = tuple(c for c in columns_text.split("&") if c) if columns_text else ()
    link_namespace = f"cdm://{quote(cluster_id, safe='')}/{quote(link or '', safe='')}"
    directory = _first(inputs, prefix, "inputDirectory", "outputDirectory", "path")
    bucket = _first(inputs, prefix, "bucketName", "bucket")
    if bucket is not None:
        path = (directory or "").strip("/") or "/"
        return DatasetRef(f"obs://{bucket}", path, link, connector, columns)
    table = _first(inputs, prefix, "tableName", "table")
    if table is not None:
        schema = _first(inputs, prefix, "schemaName", "database", "schema")
        name = f"{schema}.{table}" if schema else table
        return DatasetRef(link_namespace, name, link, connector, columns)
    if directory is not None:
        return DatasetRef(link_namespace, directory, link, connector, columns)
    index = _first(inputs, prefix, "index")
    if index is not None:
        return DatasetRef(link_namespace, index, link, connector, columns)
    return None


def job_lineage(definition: Mapping[str, Any], *, cluster_id: str) -> JobLineage:
    """The datasets of a job's definition (a ``GET .../cdm/job/{job_name}`` body or its
    job object) on cluster ``cluster_id``."""
    job = job_definition(definition)
    source = _dataset(job, "from", cluster_id)
    destination = _dataset(job, "to", cluster_id)
    return JobLineage(
        job_name=str(job.get("name") or ""),
        inputs=(source,) if source is not None else (),
        outputs=(destination,) if destination is not None else (),
    )

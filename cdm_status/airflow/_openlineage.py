"""OpenLineage for the tasks: the datasets of the jobs a task waited for, as
``apache-airflow-providers-openlineage`` expects them from
``get_openlineage_facets_on_complete``.

The jobs' definitions are read through the list budget: a named job's with
``client.get_job`` (``GET .../cdm/job/{name}``, one request each), a whole-database job's
subjobs from the job list, whose rows are the same job objects (a page per 100 subjobs).
``_lineage`` turns a definition into datasets; here they become OpenLineage ``Dataset``
inputs and ``OutputDataset`` outputs (with a ``schema`` facet when the job lists its
columns, and ``outputStatistics`` from the rows and bytes written), and a single job's run
gets an ``externalQuery`` run facet naming its submission. Imported only when Airflow asks
for lineage, so the provider never needs OpenLineage installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._definition import JobDefinition
from . import _results, _shared
from ._lineage import DatasetRef, JobLineage, job_lineage
from ._settings import ConnectionSettings

__all__ = ["LINEAGE_JOBS", "definitions", "operator_lineage", "task_lineage"]

LINEAGE_JOBS = 20
"""Named jobs whose definitions are read for lineage (one request each); a
whole-database job's subjobs are read a page of 100 at a time, all of them."""


async def definitions(
    settings: ConnectionSettings,
    names: Iterable[str],
    *,
    cluster_id: str | None,
    parent: str | None = None,
) -> dict[str, Mapping[str, Any]]:
    """``{job name: its definition}`` for ``names``: each read on its own, or (``parent``)
    paged through the parent's subjobs in the job list. A job gone since is left out."""
    wanted = set(names)
    if parent is None:
        named = sorted(wanted)[:LINEAGE_JOBS]
        read = await _shared.definitions(settings, named, cluster_id=cluster_id)
        # A job gone since (deleted after its run) has nothing left to describe.
        return {name: got.raw for name, got in read.items() if isinstance(got, JobDefinition)}
    found: dict[str, Mapping[str, Any]] = {}
    async with _shared.REGISTRY.lease(settings, cluster_id) as lease:
        for job_type in ("BATCH_JOB", "NORMAL_JOB"):
            if wanted - set(found):
                async for job in _shared.listed(lease, parent + "_", job_type):
                    if job.name in wanted:
                        found[job.name] = job.raw
    return found


def _dataset_facets(ref: DatasetRef) -> dict[str, Any]:
    from airflow.providers.common.compat.openlineage.facet import (
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    if not ref.columns:
        return {}
    fields = [SchemaDatasetFacetFields(name=column) for column in ref.columns]
    return {"schema": SchemaDatasetFacet(fields=fields)}


def operator_lineage(
    lineages: Iterable[JobLineage], results: Mapping[str, Mapping[str, Any]]
) -> Any:
    """The ``OperatorLineage`` of these jobs; ``results`` are the task's per-job entries
    (``rows_written``, ``bytes_written``, ``submission_id``)."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        ExternalQueryRunFacet,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs: dict[tuple[str, str], Any] = {}
    outputs: dict[tuple[str, str], Any] = {}
    jobs = list(lineages)
    for lineage in jobs:
        result = results.get(lineage.job_name) or {}
        for ref in lineage.inputs:
            inputs.setdefault(
                (ref.namespace, ref.name),
                Dataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref)),
            )
        rows, size = result.get("rows_written"), result.get("bytes_written")
        statistics: dict[str, Any] = {}
        if isinstance(rows, int) and rows >= 0:
            written = size if isinstance(size, int) and size >= 0 else None
            statistics["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
                rowCount=rows, size=written
            )
        for ref in lineage.outputs:
            outputs.setdefault(
                (ref.namespace, ref.name),
                OutputDataset(
                    namespace=ref.namespace,
                    name=ref.name,
                    facets=_dataset_facets(ref),
                    outputFacets=statistics,
                ),
            )
    run_facets: dict[str, Any] = {}
    if len(jobs) == 1:
        submission_id = (results.get(jobs[0].job_name) or {}).get("submission_id")
        if submission_id is not None:
            run_facets["externalQuery"] = ExternalQueryRunFacet(
                externalQueryId=str(submission_id), source="huaweicloud_cdm"
            )
    return OperatorLineage(
        inputs=list(inputs.values()), outputs=list(outputs.values()), run_facets=run_facets
    )


def task_lineage(
    settings: ConnectionSettings,
    results: Mapping[str, Mapping[str, Any]],
    *,
    cluster_id: str | None,
    parent: str | None = None,
) -> Any:
    """The lineage of a finished task that waited for the jobs of ``results``."""

    async def work() -> dict[str, Mapping[str, Any]]:
        return await definitions(settings, results, cluster_id=cluster_id, parent=parent)

    found = _results.in_worker(work)
    cluster = settings.cluster(cluster_id)
    lineages = [job_lineage(found[name], cluster_id=cluster) for name in results if name in found]
    return operator_lineage(lineages, results)

"""What an operator needs to publish what it produced: asset events through an alias (with
metadata in the extra) and OpenLineage facets, both built from one :class:`TaskLineage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    # Loaded on use only: DAG files import the operators, and lineage is needed once they run.
    from airflow_autopilot.core.lineage import LineageDataset, TaskLineage


class AutopilotLineageMixin:
    """
    Asset events and OpenLineage for an operator. The operator calls :meth:`init_lineage` in
    ``__init__``, :meth:`record_lineage` when its work is done (``execute`` or ``execute_complete``),
    and overrides :meth:`planned_lineage` for what it knows before running (OpenLineage's start event).

    With ``emit_asset_events``, the operator's ``outlets`` get the AssetAlias ``asset_alias_name``
    and each run adds an event for the concrete asset (``TaskLineage.asset_uri``) through it, with
    ``TaskLineage.extra`` as the event's extra: the asset's URI depends on rendered templates and on
    the AWS account, which an alias resolves at run time.
    """

    #: The alias this operator's asset events go through.
    asset_alias_name: ClassVar[str | None] = None

    emit_asset_events: bool
    outlets: Any
    log: Any

    def init_lineage(self, emit_asset_events: bool) -> None:
        """
        Declare the outlet (call from ``__init__``).

        :param emit_asset_events: publish an asset event for what each run produces.
        """
        self.emit_asset_events = emit_asset_events
        self.recorded_lineage: TaskLineage | None = None
        if emit_asset_events and self.asset_alias_name:
            from airflow_autopilot.assets import asset_alias

            self.outlets = [*(self.outlets or []), asset_alias(self.asset_alias_name)]

    def planned_lineage(self) -> TaskLineage | None:
        """What the task will read and produce, known from its rendered fields (no AWS call)."""
        return None

    def record_lineage(self, context: Context, lineage: TaskLineage) -> None:
        """
        Keep ``lineage`` for OpenLineage's complete event and, with ``emit_asset_events``, add the
        asset event.

        :param context: the task context.
        :param lineage: what this run read and produced.
        """
        self.recorded_lineage = lineage
        if not (self.emit_asset_events and self.asset_alias_name and lineage.asset_uri):
            return
        from airflow.providers.common.compat.sdk import Asset

        from airflow_autopilot.assets import asset_alias

        events = context.get("outlet_events")
        if events is None:  # a context without Airflow's outlet accessors (a direct execute() call)
            self.log.warning("No outlet_events in the context: no asset event for %s", lineage.asset_uri)
            return
        events[asset_alias(self.asset_alias_name)].add(Asset(uri=lineage.asset_uri), extra=lineage.extra)
        self.log.info("Asset event for %s: %s", lineage.asset_uri, lineage.extra)

    def completed_lineage(self) -> TaskLineage | None:
        """What the run read and produced, once done: by default what it recorded, else the plan."""
        return self.recorded_lineage or self.planned_lineage()

    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage inputs and outputs known before the task runs."""
        return openlineage_facets(self.planned_lineage())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage inputs and outputs of the finished task."""
        return openlineage_facets(self.completed_lineage())


def openlineage_facets(lineage: TaskLineage | None) -> Any:
    """
    An OpenLineage provider ``OperatorLineage`` for ``lineage``: one Dataset per input and output
    (``s3://bucket`` and the key, or ``sagemaker://<account>.<region>`` and ``<type>/<name>``), with a
    schema facet when the columns are known.

    :param lineage: what the task read and produced (``None``: an empty result).
    """
    from airflow.providers.openlineage.extractors import OperatorLineage

    if lineage is None:
        return OperatorLineage()
    return OperatorLineage(
        inputs=[_dataset(item) for item in lineage.inputs],
        outputs=[_dataset(item) for item in lineage.outputs],
    )


def _dataset(item: LineageDataset) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if item.fields:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=name) for name in item.fields]
        )
    return Dataset(namespace=item.namespace, name=item.name, facets=facets)

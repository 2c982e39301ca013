"""The one mechanism behind every table-driven operator: its request parameters, template fields,
renderers, docstring and ``__init__`` signature, derived from the request tables it names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from airflow_autopilot.operators.base import AWS_TEMPLATE_FIELDS

if TYPE_CHECKING:
    from airflow_autopilot.core.fields.spec import RequestTables


class RequestTablesMixin:
    """
    An operator whose request parameters come from :attr:`request_tables`: a class naming them gets
    its template fields (the connection's, the tables' parameters, then :attr:`other_template_fields`),
    renderers, the ``:param:`` lines of its docstring (after its prose, then :attr:`more_param_docs`)
    and its ``__init__`` signature derived when it is created. ``__init__`` takes the parameters
    with :meth:`take_request_parameters` before ``BaseOperator`` sees the keyword arguments, and
    assigns them verbatim (they are template fields) with :meth:`assign_request_parameters`.

    A subclass naming tables extended by a field (``Base.request_tables.extended(field)``) gets that
    field as a parameter, built into and validated in its request by its own tables, as editing the
    table gives it to the operator itself.
    """

    #: The tables of the requests the operator sends (a subclass names them).
    request_tables: ClassVar[RequestTables]
    #: The template fields that are not request parameters.
    other_template_fields: ClassVar[tuple[str, ...]] = ()
    #: ``:param:`` lines after the tables' (parameters the class shares with others).
    more_param_docs: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Derive a subclass's template fields, renderers, docstring and ``__init__`` signature from
        the :attr:`request_tables` it names (Airflow wraps that ``__init__`` after this runs)."""
        super().__init_subclass__(**kwargs)
        tables = cls.__dict__.get("request_tables")
        if tables is None:
            return
        operator: Any = cls  # a BaseOperator subclass: it has these attributes
        operator.template_fields = (*AWS_TEMPLATE_FIELDS, *tables.parameters, *cls.other_template_fields)
        operator.template_fields_renderers = tables.renderers
        cls.__doc__ = f"{(cls.__doc__ or '').rstrip()}\n\n{tables.param_docs()}{cls.more_param_docs}"
        init = cls.__dict__.get("__init__")
        if init is None:
            parent = super(cls, cls).__init__  # type: ignore[misc]

            def init(self: Any, **kwargs: Any) -> None:
                parent(self, **kwargs)

            init.__qualname__ = f"{cls.__qualname__}.__init__"
            init.__doc__ = "The parameters are the request tables'; see the class docstring."
            operator.__init__ = init
            # Airflow's default_args, partial() and expand() read the parameters from the signature.
            init.__signature__ = tables.signature(parent)  # type: ignore[attr-defined]
        else:
            init.__signature__ = tables.signature(init)

    def take_request_parameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The request parameters' values, removed from the operator's keyword arguments.

        :param kwargs: the keyword arguments (before ``BaseOperator`` sees them).
        """
        return self.request_tables.take(kwargs)

    def assign_request_parameters(self, values: dict[str, Any]) -> None:
        """Assign the request parameters verbatim (template fields are rendered later).

        :param values: what :meth:`take_request_parameters` returned.
        """
        for name, value in values.items():
            setattr(self, name, value)

    def request_parameters(self) -> dict[str, Any]:
        """The request parameters, as rendered, with the connection's security defaults where the
        operator leaves them unset (:func:`~airflow_autopilot.core.fields.common.with_connection_defaults`).

        :raises AutopilotValidationError: when the connection's defaults are malformed.
        """
        from airflow_autopilot.core.fields.common import with_connection_defaults

        values = {name: getattr(self, name) for name in self.request_tables.parameters}
        hook = getattr(self, "hook", None)
        values, problems = with_connection_defaults(values, hook.connection_extras() if hook else None)
        if problems:
            from airflow_autopilot.exceptions import AutopilotValidationError

            raise AutopilotValidationError(problems, "connection defaults")
        return values

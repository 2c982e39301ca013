"""The example workflows shipped with the provider; see ``airflow_autopilot.demo.examples``."""

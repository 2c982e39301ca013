"""The Airflow-free domain core: job facts, waiting, errors, validation, naming, promotion, XCom."""

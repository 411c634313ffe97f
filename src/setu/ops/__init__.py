"""Running a warehouse: Bronze DDL, jobs, maintenance, replicas, roles, validation, reports."""

"""The warehouse itself: project paths, the embedded cluster, the dbt profile and
runner, server capabilities, the contract."""

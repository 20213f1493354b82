"""Local Redis, PostgreSQL and Kafka-protocol servers started under a run directory."""

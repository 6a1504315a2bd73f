"""Application services shared by the Kafka worker and the offline simulator."""

"""The Kafka/Faust shell: the only package importing faust."""

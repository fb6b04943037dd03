# The two commands of the README. Both set up a fresh Debian machine first
# (virtual environment, install, RabbitMQ with its management plugin, and for the
# tests PostgreSQL); see scripts/dev.sh.
.PHONY: demo test services

demo:
	bash scripts/dev.sh demo $(ARGS)

test:
	bash scripts/dev.sh test $(ARGS)

services:
	bash scripts/services.sh --postgres

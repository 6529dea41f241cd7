# The two commands of the README: `make sim` runs a whole sim session, `make test` the test suite.
# Both bootstrap first (idempotent: seconds when nothing changed).
SHELL := /bin/bash
RUN := bash tools/in_env.sh

.PHONY: bootstrap sim test build clean
bootstrap:
	@bash tools/bootstrap.sh

build: bootstrap

sim: bootstrap
	@$(RUN) robot-stack sim $(ARGS)

# The import contract (.importlinter) first: a layering violation fails in seconds.
test: bootstrap
	@$(RUN) lint-imports --no-cache
	@$(RUN) python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build install log

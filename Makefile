# The two commands of the README: `make sim` runs a whole sim session, `make test` the test suite.
# Both bootstrap first (idempotent: seconds when nothing changed).
SHELL := /bin/bash
RUN := bash tools/in_env.sh

.PHONY: bootstrap sim test build clean wheelhouse image image-test
bootstrap:
	@bash tools/bootstrap.sh

build: bootstrap

sim: bootstrap
	@$(RUN) robot-stack sim $(ARGS)

# The import contract (.importlinter) first: a layering violation fails in seconds.
test: bootstrap
	@$(RUN) lint-imports --no-cache
	@$(RUN) python -m pytest $(PYTEST_ARGS)

# Container image (docker/README.md): `make image` builds robot_stack:latest with podman or
# docker (TORCH=cuda: robot_stack:cuda for a GPU learner); `make image-test` runs the sim graph
# split across two containers of it (benchmarks/image_test.py; not part of `make test`).
TORCH ?= cpu
wheelhouse:
	@bash tools/wheelhouse.sh $(TORCH)

image:
	@TORCH=$(TORCH) bash tools/image.sh

image-test: bootstrap image
	@$(RUN) python benchmarks/image_test.py $(ARGS)

clean:
	rm -rf build install log

# microscale: `make demo` runs the main job on the embedded default, `make test` runs the tests.
# Both install missing Debian packages first (apt-get; sudo when not root).

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := cmake ninja-build g++ pkg-config nlohmann-json3-dev libyaml-cpp-dev libfmt-dev \
                libcli11-dev libhwy-dev libopenblas-dev liblapacke-dev libgtest-dev libgmock-dev \
                libbenchmark-dev libpcre2-dev

.PHONY: all deps configure build test demo bench fuzz clean

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing missing Debian packages: $$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

configure: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then \
	    cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS); fi

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	./tools/demo.sh $(BUILD)

bench: build
	$(BUILD)/bench/microscale_bench

fuzz:
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	      -DCMAKE_C_COMPILER=clang -DMICROSCALE_BUILD_FUZZ=ON -DMICROSCALE_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_safetensors_header

clean:
	rm -rf $(BUILD)

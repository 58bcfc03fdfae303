# CUDA backend: kernels in src/cuda/*.cu, Hopper SASS (sm_90a) plus PTX so newer GPUs JIT it.
# Format kernels must produce the reference's bytes: no FMA contraction, IEEE division and
# square root, denormals kept (nvcc's defaults except --fmad, which we turn off explicitly).
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
# CMake 3.25 does not know nvcc 13's C++20 flag; teach it.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
endif()
set_target_properties(microscale PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF)
set(CMAKE_CUDA_ARCHITECTURES OFF)
set_target_properties(microscale PROPERTIES CUDA_ARCHITECTURES OFF)  # the -gencode flags below say it
file(GLOB_RECURSE MICROSCALE_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu)
target_sources(microscale PRIVATE ${MICROSCALE_CUDA_SOURCES})
set(MICROSCALE_CUDA_FLAGS
  -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90
  --fmad=false -prec-div=true -prec-sqrt=true -ftz=false
  -Xcompiler=-ffp-contract=off --expt-relaxed-constexpr -lineinfo)
target_compile_options(microscale PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${MICROSCALE_CUDA_FLAGS}>)
target_compile_definitions(microscale PRIVATE MICROSCALE_HAVE_CUDA=1)
# Static runtime: a binary built here runs on the GPU machine with only the driver there.
target_link_libraries(microscale PUBLIC CUDA::cudart_static)
# The GPU calibration forward (src/cuda/forward/) runs its GEMMs through cuBLAS (shared library).
target_link_libraries(microscale PUBLIC CUDA::cublas)
# GPU GPTQ (src/cuda/gptq_cuda.cu): the Hessian's Cholesky factor and triangular inverse.
target_link_libraries(microscale PUBLIC CUDA::cusolver)

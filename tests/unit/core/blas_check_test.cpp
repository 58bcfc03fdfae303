// The OpenBLAS core-detection advice: pre-AVX2 cores on AVX2 / AVX-512 CPUs get the matching
// OPENBLAS_CORETYPE, correct detections and CPUs without AVX2 get none.
#include <gtest/gtest.h>

#include "core/blas_check.h"

using microscale::core::blas_core_advice;

TEST(BlasCheck, MisdetectedCoreGetsTheMatchingCoretype) {
    const auto avx512 = blas_core_advice("Prescott", true, true);
    ASSERT_TRUE(avx512.has_value());
    EXPECT_NE(avx512->find("OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << *avx512;
    EXPECT_NE(avx512->find("'Prescott'"), std::string::npos) << *avx512;
    const auto avx2 = blas_core_advice("Nehalem", true, false);
    ASSERT_TRUE(avx2.has_value());
    EXPECT_NE(avx2->find("OPENBLAS_CORETYPE=Haswell"), std::string::npos) << *avx2;
    EXPECT_TRUE(blas_core_advice("SANDYBRIDGE", true, false).has_value());  // case does not matter
}

TEST(BlasCheck, CorrectDetectionsAndOldCpusGetNone) {
    EXPECT_FALSE(blas_core_advice("Haswell", true, false).has_value());
    EXPECT_FALSE(blas_core_advice("SkylakeX", true, true).has_value());
    EXPECT_FALSE(blas_core_advice("Zen", true, false).has_value());
    EXPECT_FALSE(blas_core_advice("Prescott", false, false).has_value());  // the CPU has no AVX2
}

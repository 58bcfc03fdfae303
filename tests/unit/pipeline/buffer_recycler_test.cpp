// The recycler hands a returned buffer to the next request it fits (same memory, no new
// allocation), never one less than half used, and keeps at most its cap of free bytes.
#include <gtest/gtest.h>

#include "pipeline/buffer_recycler.h"

using microscale::pipeline::BufferRecycler;
using microscale::pipeline::RecycledBuffer;

TEST(BufferRecycler, ReusesWhatFitsAndRespectsTheCap) {
    BufferRecycler r(3000);
    RecycledBuffer a = r.take(1000);
    ASSERT_NE(a.get(), nullptr);
    EXPECT_GE(a.capacity, 1000u);
    uint8_t* const pa = a.get();
    r.give_back(std::move(a));
    RecycledBuffer b = r.take(900);  // fits, and 900 >= half of 1000: reused
    EXPECT_EQ(b.get(), pa);
    r.give_back(std::move(b));
    RecycledBuffer c = r.take(100);  // would waste 90% of it: a new one
    EXPECT_NE(c.get(), pa);
    RecycledBuffer d = r.take(1000);
    EXPECT_EQ(d.get(), pa);
    // Over the cap, the smallest free buffers go first.
    RecycledBuffer big = r.take(2500);
    uint8_t* const pbig = big.get();
    r.give_back(std::move(c));    // 100 free
    r.give_back(std::move(d));    // 1100 free
    r.give_back(std::move(big));  // 3600 > 3000: the 100 and the 1000 are dropped
    EXPECT_EQ(r.take(2500).get(), pbig);
    EXPECT_GE(r.take(1000).capacity, 1000u);  // freshly allocated: nothing of that size is kept
}

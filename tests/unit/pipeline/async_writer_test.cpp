// The background writer keeps submission order, calls done() for borrowed bytes, and hands the
// writer's error back to the submitting thread.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "io/checkpoint.h"
#include "microscale/error.h"
#include "pipeline/async_writer.h"

namespace fs = std::filesystem;
using namespace microscale;

namespace {
fs::path temp_dir() {
    fs::path p = fs::temp_directory_path() / ("ms-aw-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(p);
    return p;
}
}  // namespace

TEST(AsyncWriter, OrderDoneAndRoundTrip) {
    const fs::path dir = temp_dir();
    {
        std::vector<io::TensorDecl> decls{{"a", DType::U8, {1000}}, {"b", DType::U8, {3}}, {"c", DType::U8, {5000}}};
        io::ShardedWriter w(dir, decls, {}, 4000);  // two shards
        std::vector<uint8_t> b{7, 8, 9};
        int done = 0;
        {
            pipeline::AsyncWriter aw(w, 1500);  // smaller than "c": still accepted when the queue is empty
            aw.submit("a", std::vector<uint8_t>(1000, 1));
            aw.submit_view("b", b, [&] { ++done; });
            aw.submit("c", std::vector<uint8_t>(5000, 3));
            aw.drain();
        }
        EXPECT_EQ(done, 1);
        w.commit();
    }
    const io::Checkpoint ck = io::Checkpoint::open(dir);
    EXPECT_EQ(ck.bytes(ck.at("b"))[2], 9);
    EXPECT_EQ(ck.bytes(ck.at("c"))[4999], 3);
    fs::remove_all(dir);
}

TEST(AsyncWriter, WriterErrorReachesTheCaller) {
    const fs::path dir = temp_dir();
    {
        std::vector<io::TensorDecl> decls{{"a", DType::U8, {4}}, {"b", DType::U8, {4}}};
        io::ShardedWriter w(dir, decls);
        pipeline::AsyncWriter aw(w, 1 << 20);
        aw.submit("b", std::vector<uint8_t>(4, 0));  // out of order: the writer refuses it
        EXPECT_THROW(aw.drain(), Error);
    }
    EXPECT_TRUE(fs::is_empty(dir)) << "an abandoned write leaves no files";
    fs::remove_all(dir);
}

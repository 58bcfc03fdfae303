// Glob dialect = Python fnmatch.fnmatchcase (expected values checked against CPython's rules).
#include <gtest/gtest.h>

#include "recipe/glob.h"

namespace microscale::recipe {
namespace {

TEST(RecipeGlob, StarAndQuestion) {
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "model.layers.0.mlp.up_proj.weight_quantizer"));
    EXPECT_TRUE(glob_match("*weight_quantizer", "model.layers.0.mlp.up_proj.weight_quantizer"));
    EXPECT_FALSE(glob_match("*weight_quantizer", "model.layers.0.mlp.up_proj.input_quantizer"));
    EXPECT_TRUE(glob_match("*mlp*weight_quantizer", "model.layers.11.mlp.down_proj.weight_quantizer"));
    EXPECT_TRUE(glob_match("model.layers.?.mlp*", "model.layers.7.mlp.gate_proj.weight_quantizer"));
    EXPECT_FALSE(glob_match("model.layers.?.mlp*", "model.layers.17.mlp.gate_proj.weight_quantizer"));
    EXPECT_TRUE(glob_match("a**b", "ab"));
    EXPECT_TRUE(glob_match("*a*a*a*", "xaxxaxxxa"));
    EXPECT_FALSE(glob_match("*a*a*a*b", "xaxxaxxxa"));
    // `*` crosses dots: mtp.* anchors at the start, *mlp.gate.* needs the literal "mlp.gate."
    EXPECT_TRUE(glob_match("mtp.*", "mtp.layers.0.weight_quantizer"));
    EXPECT_FALSE(glob_match("mtp.*", "model.mtp.layers.0.weight_quantizer"));
    EXPECT_TRUE(glob_match("*mlp.gate.*", "model.layers.0.mlp.gate.weight_quantizer"));
    EXPECT_FALSE(glob_match("*mlp.gate.*", "model.layers.0.mlp.gate_proj.weight_quantizer"));
    EXPECT_FALSE(glob_match("abc", "abcd"));
    EXPECT_FALSE(glob_match("abcd", "abc"));
}

TEST(RecipeGlob, CharacterClasses) {
    EXPECT_TRUE(glob_match("*[kv]_bmm_quantizer", "model.layers.0.self_attn.k_bmm_quantizer"));
    EXPECT_TRUE(glob_match("*[kv]_bmm_quantizer", "model.layers.0.self_attn.v_bmm_quantizer"));
    EXPECT_FALSE(glob_match("*[kv]_bmm_quantizer", "model.layers.0.self_attn.q_bmm_quantizer"));
    EXPECT_FALSE(glob_match("*[kv]_bmm_quantizer", "model.layers.0.self_attn.p_bmm_quantizer"));
    EXPECT_TRUE(glob_match("*[!q]_bmm_quantizer", "x.k_bmm_quantizer"));
    EXPECT_FALSE(glob_match("*[!q]_bmm_quantizer", "x.q_bmm_quantizer"));
    EXPECT_TRUE(glob_match("layer[0-3]", "layer2"));
    EXPECT_FALSE(glob_match("layer[0-3]", "layer5"));
    EXPECT_TRUE(glob_match("[a-c-e]", "-"));  // range a-c, then literal '-' and 'e'
    EXPECT_TRUE(glob_match("[a-c-e]", "e"));
    EXPECT_FALSE(glob_match("[a-c-e]", "d"));
    EXPECT_TRUE(glob_match("[]]", "]"));     // ']' first in a class is a member
    EXPECT_TRUE(glob_match("[!]]", "x"));
    EXPECT_FALSE(glob_match("[!]]", "]"));
    EXPECT_TRUE(glob_match("[a-]", "-"));
}

TEST(RecipeGlob, DiffersFromPosixFnmatch) {
    // Python: '^' is a literal member, not a negation (glibc fnmatch negates).
    EXPECT_TRUE(glob_match("[^a]", "^"));
    EXPECT_TRUE(glob_match("[^a]", "a"));
    EXPECT_FALSE(glob_match("[^a]", "b"));
    // Python: backslash is an ordinary character (glibc fnmatch escapes).
    EXPECT_TRUE(glob_match("a\\*", "a\\bc"));
    EXPECT_FALSE(glob_match("a\\*", "a*"));
    // Unclosed '[' is a literal.
    EXPECT_TRUE(glob_match("a[b", "a[b"));
    EXPECT_FALSE(glob_match("a[b", "ab"));
    // A reversed range matches nothing; negated, it matches anything.
    EXPECT_FALSE(glob_match("[z-a]", "m"));
    EXPECT_TRUE(glob_match("[!z-a]", "m"));
    // No POSIX named classes: [[:digit:]] is the class {'[', ':', 'd', 'i', 'g', 't'} followed by ']'.
    EXPECT_FALSE(glob_match("[[:digit:]]", "5"));
    EXPECT_TRUE(glob_match("[[:digit:]]", "d]"));
}

TEST(RecipeGlob, FusedExpertNames) {
    EXPECT_EQ(normalize_fused_experts_name("model.layers.0.mlp.experts.gate_up_proj_weight_quantizers.7"),
              "model.layers.0.mlp.experts.gate_up_proj_weight_quantizer");
    EXPECT_EQ(normalize_fused_experts_name("m.experts.down_proj_input_quantizer.12.x"), "m.experts.down_proj_input_quantizer.x");
    EXPECT_EQ(normalize_fused_experts_name("m.q_proj.weight_quantizer"), "m.q_proj.weight_quantizer");
    EXPECT_EQ(normalize_fused_experts_name("m.weight_quantizers.7a"), "m.weight_quantizers.7a");
}

}  // namespace
}  // namespace microscale::recipe

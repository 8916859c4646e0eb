// ConnectionAdmission and source_key: the server's bound on connections before their first frame.
#include <gtest/gtest.h>

#include "transport/admission.hpp"

namespace tether::transport {
namespace {

TEST(Admission, LimitsPerSourceAndInTotal) {
  ConnectionAdmission admission(AdmissionLimits{4, 2});
  EXPECT_TRUE(admission.try_admit("a"));
  EXPECT_TRUE(admission.try_admit("a"));
  EXPECT_FALSE(admission.try_admit("a"));  // per source
  EXPECT_TRUE(admission.try_admit("b"));
  EXPECT_TRUE(admission.try_admit("c"));
  EXPECT_FALSE(admission.try_admit("d"));  // in total
  admission.release("a");
  EXPECT_EQ(admission.pending(), 3u);
  EXPECT_EQ(admission.pending_from("a"), 1u);
  EXPECT_TRUE(admission.try_admit("d"));
  admission.release("nobody");  // never admitted: nothing changes
  EXPECT_EQ(admission.pending(), 4u);
}

TEST(Admission, SourceKeysGroupIpv6ByPrefixAndUnmapIpv4) {
  EXPECT_EQ(source_key(asio::ip::make_address("127.0.0.2")), "127.0.0.2");
  EXPECT_EQ(source_key(asio::ip::make_address("::ffff:10.1.2.3")), "10.1.2.3");
  EXPECT_EQ(source_key(asio::ip::make_address("2001:db8:1:2:aaaa::1")),
            source_key(asio::ip::make_address("2001:db8:1:2:bbbb::9")));
  EXPECT_NE(source_key(asio::ip::make_address("2001:db8:1:2::1")),
            source_key(asio::ip::make_address("2001:db8:1:3::1")));
}

}  // namespace
}  // namespace tether::transport

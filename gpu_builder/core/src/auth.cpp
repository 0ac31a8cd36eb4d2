// Credentials: reading the token and PEM files, and the constant-time token comparison.
#include "vectorscale/builder/auth.hpp"

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include "vectorscale/core/error.hpp"

namespace vs::builder {

namespace {

// The whole file; nullopt when it cannot be opened or read.
std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return s;
}

}  // namespace

std::string read_token_file(const std::string& path) {
  std::optional<std::string> token = read_whole_file(path);
  VS_EXPECTS(token.has_value(), "cannot read token file \"%s\"", path.c_str());
  token->erase(token->find_last_not_of(" \t\n\r\f\v") + 1);  // npos + 1 == 0: all blank
  VS_EXPECTS(!token->empty(), "token file \"%s\" is empty", path.c_str());
  return std::move(*token);
}

std::string read_pem_file(const std::string& path, const char* flag) {
  const std::optional<std::string> s = read_whole_file(path);
  VS_EXPECTS(s.has_value() && !s->empty(), "cannot read %s file \"%s\"", flag, path.c_str());
  VS_EXPECTS(s->find("-----BEGIN ") != std::string::npos, "%s file \"%s\" is not PEM", flag, path.c_str());
  return *s;
}

bool bearer_token_matches(std::string_view header, std::string_view token) noexcept {
  constexpr std::string_view kPrefix = "Bearer ";
  // Every byte of the expected token is compared, whatever the header holds, so the time
  // depends only on the token's length (which is not secret in any useful way).
  const std::string_view given = header.size() >= kPrefix.size() ? header.substr(kPrefix.size()) : std::string_view{};
  unsigned diff = header.size() >= kPrefix.size() && header.substr(0, kPrefix.size()) == kPrefix ? 0u : 1u;
  diff |= given.size() != token.size() ? 1u : 0u;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const unsigned char a = static_cast<unsigned char>(token[i]);
    const unsigned char b = i < given.size() ? static_cast<unsigned char>(given[i]) : static_cast<unsigned char>(~a);
    diff |= static_cast<unsigned>(a ^ b);
  }
  return diff == 0 && !token.empty();
}

}  // namespace vs::builder

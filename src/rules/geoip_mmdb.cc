#include "rules/geoip_mmdb.h"

#include <cstring>

namespace veer::rules {

Result<std::unique_ptr<GeoipMmdb>> GeoipMmdb::open(const std::string& path) {
  std::unique_ptr<GeoipMmdb> g(new GeoipMmdb());
  g->path_ = path;
  int rc = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &g->db_);
  if (rc != MMDB_SUCCESS) {
    std::string msg = path + ": " + MMDB_strerror(rc);
    if (rc == MMDB_IO_ERROR) msg += std::string(" (") + std::strerror(errno) + ")";
    return unexpected(Error(msg, rc));
  }
  g->open_ = true;
  const char* type = g->db_.metadata.database_type;
  g->shape_ = type && std::strcmp(type, "sing-geoip") == 0 ? Shape::SingGeoip : Shape::Country;
  return g;
}

GeoipMmdb::~GeoipMmdb() {
  if (open_) MMDB_close(&db_);
}

std::string_view GeoipMmdb::lookup(const IpAddress& addr) const {
  IpAddress ip = addr.unmap();
  if (!ip.valid()) return {};
  sockaddr_storage ss{};
  if (ip.isV4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    std::memcpy(&s->sin_addr, ip.data(), 4);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    s->sin6_family = AF_INET6;
    std::memcpy(&s->sin6_addr, ip.data(), 16);
  }
  int err = 0;
  // MMDB_lookup_sockaddr takes a non-const MMDB_s but does not modify it.
  auto* db = const_cast<MMDB_s*>(&db_);
  MMDB_lookup_result_s res = MMDB_lookup_sockaddr(db, reinterpret_cast<sockaddr*>(&ss), &err);
  if (err != MMDB_SUCCESS || !res.found_entry) return {};
  MMDB_entry_data_s data{};
  if (shape_ == Shape::SingGeoip) {
    if (MMDB_get_value(&res.entry, &data, nullptr) != MMDB_SUCCESS) return {};
  } else {
    if (MMDB_get_value(&res.entry, &data, "country", "iso_code", nullptr) != MMDB_SUCCESS ||
        !data.has_data) {
      data = {};
      if (MMDB_get_value(&res.entry, &data, "registered_country", "iso_code", nullptr) !=
          MMDB_SUCCESS) {
        return {};
      }
    }
  }
  if (!data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING) return {};
  return std::string_view(data.utf8_string, data.data_size);
}

std::vector<std::string> GeoipMmdb::codes() const {
  std::vector<std::string> out;
  if (shape_ != Shape::SingGeoip) return out;
  const auto& langs = db_.metadata.languages;
  for (size_t k = 0; k < langs.count; ++k) {
    if (langs.names[k]) out.emplace_back(langs.names[k]);
  }
  return out;
}

std::string_view GeoipMmdb::databaseType() const {
  const char* t = db_.metadata.database_type;
  return t ? std::string_view(t) : std::string_view();
}

Status GeoipMmdb::verify() const {
  auto* db = const_cast<MMDB_s*>(&db_);
  for (unsigned k = 0; k < 256; ++k) {
    uint8_t b[16] = {};
    b[0] = static_cast<uint8_t>(k);
    b[1] = static_cast<uint8_t>(k * 37);
    for (int fam = 0; fam < 2; ++fam) {
      sockaddr_storage ss{};
      if (fam == 0) {
        auto* s = reinterpret_cast<sockaddr_in*>(&ss);
        s->sin_family = AF_INET;
        std::memcpy(&s->sin_addr, b, 4);
      } else {
        if (db_.metadata.ip_version != 6) continue;
        auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
        s->sin6_family = AF_INET6;
        b[0] = static_cast<uint8_t>(0x20 | (k & 0x0f));
        std::memcpy(&s->sin6_addr, b, 16);
      }
      int err = 0;
      auto res = MMDB_lookup_sockaddr(db, reinterpret_cast<sockaddr*>(&ss), &err);
      if (err != MMDB_SUCCESS) return unexpected(path_ + ": " + MMDB_strerror(err));
      if (!res.found_entry) continue;
      MMDB_entry_data_list_s* list = nullptr;
      int rc = MMDB_get_entry_data_list(&res.entry, &list);
      MMDB_free_entry_data_list(list);
      if (rc != MMDB_SUCCESS) return unexpected(path_ + ": " + MMDB_strerror(rc));
    }
  }
  return {};
}

}  // namespace veer::rules

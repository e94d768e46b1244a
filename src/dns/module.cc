// Anchor for the veer_dns static library (keeps the archive non-empty while the module grows).
namespace veer::dns {
int moduleAnchor() { return 0; }
}  // namespace veer::dns

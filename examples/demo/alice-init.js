// Runs once at every launch, in alice's own context (CALLER_PUBLIC_KEY === CIRCLE_PUBLIC_KEY),
// so it may write. It must be safe to run again: it only (re)writes alice's public profile.
save_data('profile', {
  name: 'Alice',
  about: 'A demo circle. Any authenticated peer may read this profile; only Alice may change it.',
  public_key: CIRCLE_PUBLIC_KEY,
  links: ['profile', 'guestbook'],
})
if (load_data('guestbook') === null) save_data('guestbook', [])
print('alice: profile ready')
'ok'

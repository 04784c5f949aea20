/**
 * A request's URL as a log line may show it. Web-socket clients that cannot set headers authenticate
 * with `?token=<access token>`, and the dashboard's download links carry a `?ticket=`: both are
 * credentials, which must not reach a log that operators ship elsewhere and keep for months.
 */

/** Query parameters whose values are credentials. */
const SECRET_PARAMETER = /([?&](?:token|ticket)=)[^&#]*/gi;

/** `url` with the values of credential-carrying query parameters replaced by `[secret]`. */
export function loggableUrl(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query) + url.slice(query).replace(SECRET_PARAMETER, '$1[secret]');
}
